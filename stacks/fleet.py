"""Fleet scale: which stack holds a stream's resources, and the limits every stack is held to.

A stream's per-stream resources (its alarms and its policy parameter) live in one of STREAM_BUCKETS nested stacks,
chosen by a stable hash of the stream's identity: adding or removing a stream changes only that stream's resources,
and never moves another stream to another stack. STREAM_BUCKETS is a constant, not a setting: changing it would
move almost every stream (a replacement of every alarm and parameter, and a deploy that fails on their fixed
names), so it is raised only with a migration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from remediator.core.policy import StreamPolicy

# 64 buckets: at 1,000 streams with the default detectors (10 resources each: 9 alarms and a parameter) a bucket
# holds about 160 resources on average, and the fullest about 270 (tests/infrastructure/test_fleet_scale.py).
STREAM_BUCKETS = 64
# CloudFormation allows 500 resources per stack (AWS CloudFormation quotas, "Resources": 500 per stack); 50 are kept
# in reserve for what a later change adds to a stack before its streams move.
MAX_RESOURCES_PER_STACK = 450


class StackTooLarge(ValueError):
    """A stack would hold more resources than MAX_RESOURCES_PER_STACK."""


def stream_identity(policy: StreamPolicy) -> str:
    """The stream's (account, region, name), as its policy key writes it (core.policy.stream_key): the name alone
    for a stream of the deployment's own account and region, so the streams of a deployment made before accounts
    and regions existed keep their buckets."""
    return policy.key


def bucket_of(identity: str) -> int:
    """The stream's bucket: the first 8 bytes of SHA-256 of its identity, modulo STREAM_BUCKETS (Python's hash() is
    salted per process; SHA-256 is the same on every machine and in every release)."""
    return int.from_bytes(hashlib.sha256(identity.encode("utf-8")).digest()[:8], "big") % STREAM_BUCKETS


def bucket_id(bucket: int) -> str:
    """The nested stack's construct id (and so its logical id in the core stack)."""
    return f"Streams{bucket:02d}"


def check_size(stack_name: str, resources: int, *, what_to_do: str) -> None:
    if resources > MAX_RESOURCES_PER_STACK:
        raise StackTooLarge(
            f"stack {stack_name} would hold {resources} resources, more than the {MAX_RESOURCES_PER_STACK} this "
            f"project allows a stack (CloudFormation's limit is 500 per stack): {what_to_do}"
        )


# --- IAM: resource lists that fit the role's policy size ------------------------------------------------------------


def _common_prefix(first: str, last: str) -> str:
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


def _pattern(run: Sequence[str]) -> str:
    if len(run) == 1:
        return run[0]
    return _common_prefix(run[0], run[-1]).rstrip("*") + "*"


def compact(values: Iterable[str], at_most: int) -> list[str]:
    """At most `at_most` patterns ('*' at the end matches any suffix) covering every value, found top-down: start
    from one pattern (the values' common prefix), then split the widest pattern by the character that follows its
    prefix while the count stays within `at_most`. A value alone keeps its exact form. Deterministic: a function of
    the set of values and `at_most`."""
    ordered = sorted(set(values))
    limit = max(at_most, 1)
    if len(ordered) <= limit:
        return ordered
    runs: list[list[str]] = [ordered]
    stuck: set[int] = set()  # ids of runs whose split would exceed the limit
    while True:
        splittable = [r for r in runs if len(r) > 1 and id(r) not in stuck]
        if not splittable:
            break
        run = min(splittable, key=lambda r: (len(_common_prefix(r[0], r[-1])), -len(r), r[0]))
        depth = len(_common_prefix(run[0], run[-1]))
        groups: dict[str, list[str]] = {}
        for value in run:  # sorted, so each group is sorted
            groups.setdefault(value[depth : depth + 1], []).append(value)
        if len(runs) - 1 + len(groups) > limit:
            stuck.add(id(run))
            continue
        index = next(i for i, r in enumerate(runs) if r is run)
        runs[index : index + 1] = list(groups.values())
    return sorted(dict.fromkeys(_pattern(run) for run in runs))


def policy_size(statements: Iterable[dict[str, object]]) -> int:
    """The size IAM counts: characters of the JSON document without white space (IAM quotas: "IAM does not count
    white space when calculating the size of a policy")."""
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))
    return len(text) - text.count(" ")
