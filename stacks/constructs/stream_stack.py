"""A nested stack holding the per-stream resources of the streams hashed to its bucket (stacks/fleet.py).

In the hub's core stack: every stream's policy parameter, and the alarms of the hub's own streams among them. In a
member stack (stacks/member_stack.py): the alarms of that member's streams, no parameter (the hub holds every
stream's). The same hash and the same bucket ids in both, so a stream's bucket does not depend on where its alarms
live. It references nothing in its parent stack (alarm and parameter names are fixed), so a change to a stream
redeploys its bucket's nested stack and no other."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aws_cdk import CfnResource, NestedStack, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from remediator.core.symptoms.base import AlarmSpec
from remediator.policy_files import PolicySet

from stacks.constructs.alarms import StreamAlarms
from stacks.constructs.state import PolicyParameters
from stacks.fleet import MAX_RESOURCES_PER_STACK, STREAM_BUCKETS, bucket_of, check_size, stream_identity


@dataclass
class AllStreamAlarms:
    """Every stream stack's alarms, keyed (stream, symptom, qualifier), as StreamAlarms keys them."""

    alarms: dict[tuple[str, str, str], cloudwatch.CfnAlarm] = field(default_factory=dict)
    specs: dict[tuple[str, str, str], AlarmSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, stream_stacks: Iterable[StreamStack]) -> AllStreamAlarms:
        found = cls()
        for stream_stack in stream_stacks:
            found.alarms.update(stream_stack.alarms.alarms)
            found.specs.update(stream_stack.alarms.specs)
        return found


def buckets(policies: PolicySet) -> dict[int, PolicySet]:
    """The policies split by bucket (stacks/fleet.py), only the buckets that hold a stream."""
    names: dict[int, list[str]] = defaultdict(list)
    for name, policy in policies.streams.items():
        names[bucket_of(stream_identity(policy))].append(name)
    return {
        bucket: PolicySet(
            streams={n: policies.streams[n] for n in sorted(members)},
            sources={n: policies.sources[n] for n in sorted(members)},
        )
        for bucket, members in sorted(names.items())
    }


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
        parameter_root: str | None,
    ) -> None:
        """`policies`: the bucket's streams; `alarm_policies`: those whose alarms this stack holds (default: all).
        `parameter_root` None: no policy parameter (a member's stream stack: the hub's hold every stream's)."""
        super().__init__(
            scope,
            construct_id,
            description=f"Kinesis Remediator: alarms and policy parameters of the streams in bucket {bucket} "
            f"of {STREAM_BUCKETS}"
            if parameter_root is not None
            else f"Kinesis Remediator member: alarms of this member's streams in bucket {bucket} of {STREAM_BUCKETS}",
        )
        self.bucket = bucket
        self.streams = sorted(policies.streams)
        self.alarms = StreamAlarms(self, "Alarms", policies=alarm_policies or policies, prefix=alarm_prefix)
        self.policy_parameters: PolicyParameters | None = (
            PolicyParameters(self, "Policies", policies=policies, parameter_root=parameter_root)
            if parameter_root is not None
            else None
        )
        self._parent = Stack.of(scope).stack_name
        self._id = construct_id
        # What another construct adds to this stack adds its count here (resource_count).
        self.extra_resources = 0

    @property
    def resource_count(self) -> int:
        """Counted from what was built (walking the construct tree of 1,000 streams through jsii costs seconds);
        tests/infrastructure/test_fleet_scale.py checks it against the synthesized templates. A construct added to
        a stream stack adds its own count to `extra_resources`."""
        parameters = len(self.policy_parameters.parameters) if self.policy_parameters is not None else 0
        return len(self.alarms.alarms) + parameters + self.extra_resources

    def check_size(self) -> None:
        count = self.resource_count
        what = "alarms and parameters" if self.policy_parameters is not None else "alarms"
        check_size(
            f"{self._id} (nested in {self._parent})",
            count,
            what_to_do=f"its {len(self.streams)} streams ({', '.join(self.streams[:5])}"
            f"{', ...' if len(self.streams) > 5 else ''}) need {count} {what}. Disable "
            "detectors these streams do not need, or choose fleet alarms for some (one Metrics Insights alarm "
            "watches many streams), or split the policies over two deployments, each with its own alarmPrefix. "
            f"Streams are spread over {STREAM_BUCKETS} such stacks by a hash of their identity; at most "
            f"{MAX_RESOURCES_PER_STACK} resources fit one.",
        )


def own_resource_count(stack: Stack) -> int:
    """The resources of `stack`'s own template: every CfnResource below it but those inside its stream stacks (each
    of which is one AWS::CloudFormation::Stack resource here, built in a sibling scope, `<id>.NestedStack`, that
    this walk counts). The stream stacks' thousands of alarms are not walked (jsii makes that slow)."""
    return sum(
        1
        for child in stack.node.children
        if not isinstance(child, StreamStack)
        for construct in child.node.find_all()
        if isinstance(construct, CfnResource)
    )


def check_sizes(stack: Stack, stream_stacks: Iterable[StreamStack], *, what_to_do: str) -> None:
    """`stack` and each of its stream stacks within MAX_RESOURCES_PER_STACK (stacks/fleet.py); raises StackTooLarge
    naming the stack. `what_to_do`: the advice when `stack` itself is too large."""
    for stream_stack in stream_stacks:
        stream_stack.check_size()
    check_size(stack.stack_name, own_resource_count(stack), what_to_do=what_to_do)
