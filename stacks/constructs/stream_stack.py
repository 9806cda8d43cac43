"""A nested stack holding the per-stream resources of the streams hashed to its bucket (stacks/fleet.py): their
policy parameters, and the alarms of the hub's own streams among them (a member's are in its member stack). It
references nothing in the core stack (alarm and parameter names are fixed), so a change to a stream redeploys its
bucket's nested stack and no other."""

from __future__ import annotations

from aws_cdk import NestedStack, Stack
from constructs import Construct
from remediator.policy_files import PolicySet

from stacks.constructs.alarms import StreamAlarms
from stacks.constructs.state import PolicyParameters
from stacks.fleet import MAX_RESOURCES_PER_STACK, STREAM_BUCKETS, check_size


class StreamStack(NestedStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: int,
        policies: PolicySet,
        alarm_policies: PolicySet | None = None,
        alarm_prefix: str,
        parameter_root: str,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Kinesis Remediator: alarms and policy parameters of the streams in bucket {bucket} "
            f"of {STREAM_BUCKETS}",
        )
        self.bucket = bucket
        self.streams = sorted(policies.streams)
        # Alarms for `alarm_policies` (default: all): the hub's own streams; a member's are in its member stack.
        self.alarms = StreamAlarms(self, "Alarms", policies=alarm_policies or policies, prefix=alarm_prefix)
        self.policy_parameters = PolicyParameters(self, "Policies", policies=policies, parameter_root=parameter_root)
        self._parent = Stack.of(scope).stack_name
        self._id = construct_id
        # What another construct adds to this stack adds its count here (resource_count).
        self.extra_resources = 0

    @property
    def resource_count(self) -> int:
        """Counted from what was built (walking the construct tree of 1,000 streams through jsii costs seconds);
        tests/infrastructure/test_fleet_scale.py checks it against the synthesized templates. A construct added to
        a stream stack adds its own count to `extra_resources`."""
        return len(self.alarms.alarms) + len(self.policy_parameters.parameters) + self.extra_resources

    def check_size(self) -> None:
        count = self.resource_count
        check_size(
            f"{self._id} (nested in {self._parent})",
            count,
            what_to_do=f"its {len(self.streams)} streams ({', '.join(self.streams[:5])}"
            f"{', ...' if len(self.streams) > 5 else ''}) need {count} alarms and parameters. Disable "
            "detectors these streams do not need, or choose fleet alarms for some (one Metrics Insights alarm "
            "watches many streams), or split the policies over two deployments, each with its own alarmPrefix. "
            f"Streams are spread over {STREAM_BUCKETS} such stacks by a hash of their identity; at most "
            f"{MAX_RESOURCES_PER_STACK} resources fit one.",
        )
