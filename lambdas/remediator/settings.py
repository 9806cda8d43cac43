"""The remediator's environment, validated once at cold start. The core never reads os.environ."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from remediator.core.deployment import Env


class Settings(BaseModel):
    # Errors never echo values: the environment also holds credentials.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, hide_input_in_errors=True)

    region: str = Field(..., alias="AWS_REGION", min_length=1)
    audit_table: str = Field(..., alias=Env.AUDIT_TABLE, min_length=3)
    idempotency_table: str = Field(..., alias=Env.IDEMPOTENCY_TABLE, min_length=3)
    topic_arn: str = Field(..., alias=Env.TOPIC_ARN, pattern=r"^arn:aws[a-z-]*:sns:")
    kill_switch_parameter: str = Field(..., alias=Env.KILL_SWITCH, pattern=r"^/")
    policy_parameter_prefix: str = Field(..., alias=Env.POLICY_PREFIX, pattern=r"^/")
    alarm_prefix: str = Field(..., alias=Env.ALARM_PREFIX, min_length=1)
    # Follow-through (core.follow_through); without both, the remediator takes one step per alarm state change.
    follow_up_role_arn: str | None = Field(None, alias=Env.FOLLOW_UP_ROLE, pattern=r"^arn:aws[a-z-]*:iam::")
    schedule_prefix: str | None = Field(None, alias=Env.SCHEDULE_PREFIX, pattern=r"^[0-9a-zA-Z_.-]{1,40}$")

    # Many accounts (issue 11.4): the external id for sts:AssumeRole on a member's role. Needed only when a member's
    # stream is remedied (that event fails, audited, without it). STS: 2-1224 characters of [\w+=,.@:/-].
    # The hub's own account and partition are not settings: they come from the invoked function's ARN (each
    # invocation's context, no API call); its region is AWS_REGION above.
    member_external_id: str | None = Field(
        None, alias=Env.MEMBER_EXTERNAL_ID, min_length=2, max_length=1224, pattern=r"^[A-Za-z0-9_+=,.@:/-]+$"
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        wanted = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({key: value for key, value in environ.items() if key in wanted})
