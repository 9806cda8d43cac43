"""The shard census (service.census): every protected stream's open shards published, an unreadable stream skipped,
the reads paced under DescribeStreamSummary's account limit and bounded by the invocation's time; and the SSM
listing of the protected streams (SsmPolicySource.names), page after page."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from remediator.clients.parameters import SsmPolicySource
from remediator.core.deployment import CENSUS_SOURCE
from remediator.core.evidence import StreamMode, StreamState, StreamStatus
from remediator.core.ports import PolicyUnreadable
from remediator.events import CensusEvent
from remediator.service import CENSUS_DESCRIBES_PER_SECOND, Census, Dependencies, census

from tests.fakes import REGION, stream_arn


class Untouchable:
    """Any port the census must not use: audit, e-mail, writes, metrics reads, kill switch."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the census used {name}")


class Streams:
    def __init__(self, shards: dict[str, int], fail: dict[str, Exception] | None = None) -> None:
        self.shards, self.fail, self.read = shards, fail or {}, []

    def describe(self, stream_name: str) -> StreamState:
        self.read.append(stream_name)
        if stream_name in self.fail:
            raise self.fail[stream_name]
        return StreamState(
            name=stream_name,
            arn=stream_arn(stream_name),
            status=StreamStatus.ACTIVE,
            mode=StreamMode.PROVISIONED,
            open_shards=self.shards[stream_name],
            retention_hours=24,
        )


class Policies:
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def names(self) -> list[str]:
        return list(self._names)

    def get(self, stream: str) -> None:
        raise AssertionError("the census reads no policy")


class Clock:
    """A fake monotonic clock that sleeping advances, and a time-left budget that shrinks with it."""

    def __init__(self, budget: float = float("inf")) -> None:
        self.now, self.budget, self.sleeps = 0.0, budget, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def time_left(self) -> float:
        return self.budget - self.now


def deps(streams: Streams, names: list[str], clock: Clock) -> Dependencies:
    nothing: Any = Untouchable()
    return Dependencies(
        streams=streams,
        metrics=nothing,
        reads=nothing,
        writes=nothing,
        audit=nothing,
        notifier=nothing,
        kill_switch=nothing,
        policies=Policies(names),
        time_left=clock.time_left,
    )


def run(streams: Streams, names: list[str], clock: Clock | None = None, reserve: float = 0.0) -> tuple[Census, list]:
    clock = clock or Clock()
    published: list[tuple[str, int]] = []
    taken = census(
        deps(streams, names, clock),
        lambda stream, shards: published.append((stream, shards)),
        reserve_seconds=reserve,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    return taken, published


def test_the_census_publishes_one_open_shards_per_protected_stream() -> None:
    # Given three protected streams
    streams = Streams({"a": 2, "b": 8, "c": 1})
    # When the census runs
    taken, published = run(streams, ["a", "b", "c"])
    # Then each stream's count is published once, and nothing else is touched (Untouchable ports)
    assert published == [("a", 2), ("b", 8), ("c", 1)]
    assert taken == Census(open_shards={"a": 2, "b": 8, "c": 1}, unreadable={})


def test_an_unreadable_stream_is_skipped_and_the_others_are_still_published() -> None:
    # Given a protected stream that no longer exists between two readable ones
    gone = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "Stream b not found"}}, "Describe")
    streams = Streams({"a": 2, "c": 4}, fail={"b": gone})
    # When the census runs
    taken, published = run(streams, ["a", "b", "c"])
    # Then b is reported with why, and a and c are published
    assert published == [("a", 2), ("c", 4)]
    assert list(taken.unreadable) == ["b"]
    assert "ResourceNotFoundException" in taken.unreadable["b"]
    assert streams.read == ["a", "b", "c"]


def test_reads_are_paced_under_the_account_limit() -> None:
    # Given 30 protected streams whose reads answer at once
    names = [f"s{i:02}" for i in range(30)]
    clock = Clock()
    # When the census runs
    run(Streams(dict.fromkeys(names, 1)), names, clock)
    # Then the reads are spread at CENSUS_DESCRIBES_PER_SECOND (half of DescribeStreamSummary's 20 per second)
    assert CENSUS_DESCRIBES_PER_SECOND == 10
    assert clock.now == pytest.approx(29 / CENSUS_DESCRIBES_PER_SECOND)
    assert all(wait == pytest.approx(0.1) for wait in clock.sleeps)


def test_no_read_starts_without_the_time_to_finish_it() -> None:
    # Given 50 streams and an invocation with 3 s left, keeping 1 s for the worst case of one read
    names = [f"s{i:02}" for i in range(50)]
    clock = Clock(budget=3.0)
    # When the census runs
    taken, published = run(Streams(dict.fromkeys(names, 1)), names, clock, reserve=1.0)
    # Then it reads while 1 s or more is left (21 reads, 0.1 s apart) and reports the rest as unreached
    assert len(published) == 21
    assert taken.unreached == tuple(names[21:])


def test_the_census_event_model_is_the_rules_constant_input() -> None:
    # Given the source the stack's rule sends; Then the parser model accepts exactly it, and nothing more
    assert CensusEvent.model_validate({"source": CENSUS_SOURCE}).source == CENSUS_SOURCE
    with pytest.raises(ValueError, match="extra"):
        CensusEvent.model_validate({"source": CENSUS_SOURCE, "stream": "orders"})
    with pytest.raises(ValueError, match="literal"):
        CensusEvent.model_validate({"source": "kinesis-remediator.other"})


# The protected streams: SSM GetParametersByPath under the policy prefix -----------------------------------------
def parameter(name: str) -> dict[str, Any]:
    return {"Name": f"/kr/policies/{name}", "Type": "String", "Value": "{}", "Version": 1}


def test_the_protected_streams_are_listed_page_after_page() -> None:
    # Given 12 policy parameters, which SSM answers in two pages (at most 10 a page)
    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    expected = {"Path": "/kr/policies", "Recursive": False, "MaxResults": 10}
    with Stubber(ssm) as stub:
        first = [parameter(f"s{i:02}") for i in range(10)]
        stub.add_response("get_parameters_by_path", {"Parameters": first, "NextToken": "t1"}, expected)
        stub.add_response(
            "get_parameters_by_path",
            {"Parameters": [parameter("s11"), parameter("s10")]},
            {**expected, "NextToken": "t1"},
        )
        # When the source lists them (with the prefix as configured, trailing slash included)
        names = SsmPolicySource(ssm, "/kr/policies/").names()
        stub.assert_no_pending_responses()
    # Then every stream of both pages is there, sorted
    assert names == [f"s{i:02}" for i in range(12)]


def test_a_listing_that_fails_raises_policy_unreadable() -> None:
    # Given SSM throttling the listing (past the SDK's retries)
    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameters_by_path", "ThrottlingException", "Rate exceeded")
        # Then the census cannot tell which streams are protected, and says so
        with pytest.raises(PolicyUnreadable, match="cannot list the policies under /kr/policies"):
            SsmPolicySource(ssm, "/kr/policies").names()
