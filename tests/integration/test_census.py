"""The shard census through the real handler against moto: the census rule's input publishes each protected
stream's OpenShards as EMF (one document per stream, under its StreamName), skips a stream it cannot read, and
reads only: no audit row, no e-mail, no change, no PutMetricData. Every call is checked against the stack's IAM
(tests/integration/contract.py: GetParametersByPath on the policy prefix, DescribeStreamSummary per stream)."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.deployment import CENSUS_SOURCE, METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric

from tests.integration.support import policy
from tests.integration.test_remediator_metrics import counters, emf_documents, emitted

M = RemediatorMetric
CENSUS_EVENT = {"source": CENSUS_SOURCE}


def open_shards(stdout: str) -> dict[str, int]:
    """Stream -> the OpenShards published for it in the captured EMF (each one under service and StreamName)."""
    found: dict[str, int] = {}
    for document in emf_documents(stdout):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if [m["Name"] for m in directive["Metrics"]] != [M.OPEN_SHARDS]:
                continue
            assert directive["Namespace"] == METRICS_NAMESPACE
            assert directive["Dimensions"] == [[M.SERVICE_DIMENSION, M.STREAM_DIMENSION]]
            assert document[M.SERVICE_DIMENSION] == SERVICE_NAME
            stream = document[M.STREAM_DIMENSION]
            assert stream not in found, f"OpenShards of {stream} published twice"
            (found[stream],) = document[M.OPEN_SHARDS]  # Powertools writes a metric's values as a list
    return found


def test_the_census_publishes_open_shards_for_each_protected_stream(aws, invoke, api_calls, capsys):
    # Given three streams with a deployed policy, and one stream without (not protected: not read)
    for name, shards in (("orders", 2), ("clicks", 5), ("archive", 1), ("unprotected", 3)):
        aws.create_stream(name, shards)
    for name in ("orders", "clicks", "archive"):
        aws.put_policy(policy(name=name, mode="enforce"))
    capsys.readouterr()

    # When the census rule's input arrives
    result = invoke(CENSUS_EVENT)

    # Then each protected stream's open shards is published once, as EMF under its StreamName
    assert open_shards(capsys.readouterr().out) == {"orders": 2, "clicks": 5, "archive": 1}
    assert result["open_shards"] == {"archive": 1, "clicks": 5, "orders": 2}
    # And it only listed the policies and read each protected stream: no audit, no e-mail, no change
    assert sorted(api_calls.operations()) == ["DescribeStreamSummary"] * 3 + ["GetParametersByPath"]
    assert [p["StreamName"] for p in api_calls.params("kinesis", "DescribeStreamSummary")] == [
        "archive",
        "clicks",
        "orders",
    ]
    assert aws.emails() == []
    assert all(aws.audit_rows(name) == [] for name in ("orders", "clicks", "archive"))


def test_a_stream_the_census_cannot_read_is_skipped_and_logged(aws, invoke, capsys, caplog):
    # Given two protected streams, one of which was deleted after its policy was deployed
    aws.create_stream("orders", 4)
    aws.put_policy(policy(name="orders"))
    aws.put_policy(policy(name="deleted"))
    capsys.readouterr()

    # When the census runs
    result = invoke(CENSUS_EVENT)

    # Then orders is still published; the deleted stream is reported, logged, and has no OpenShards
    out = capsys.readouterr().out
    assert open_shards(out) == {"orders": 4}
    assert result["unreadable"] == ["deleted"]
    (warning,) = [r for r in caplog.records if r.getMessage().startswith("Census: cannot read the stream")]
    assert warning.stream == "deleted"  # type: ignore[attr-defined]
    assert "ResourceNotFoundException" in warning.error  # type: ignore[attr-defined]
    # And the census counts the streams it left without a count (a census that reads nothing shows)
    assert counters(emitted(emf_documents(out)))[M.CENSUS_STREAMS_MISSED] == 1


def test_the_census_lists_every_page_of_protected_streams(aws, invoke, api_calls, capsys):
    # Given 12 protected streams: more than one GetParametersByPath page (at most 10 a page)
    names = [f"stream-{i:02}" for i in range(12)]
    for name in names:
        aws.create_stream(name, 1)
        aws.put_policy(policy(name=name))
    capsys.readouterr()

    # When the census runs
    invoke(CENSUS_EVENT)

    # Then it paged through the listing and published all 12
    assert len(api_calls.params("ssm", "GetParametersByPath")) == 2
    assert open_shards(capsys.readouterr().out) == dict.fromkeys(names, 1)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"source": CENSUS_SOURCE, "stream": "orders"}, id="our source with more than our input"),
        pytest.param({"source": CENSUS_SOURCE, "detail-type": "Scheduled Event"}, id="a scheduled event, not ours"),
    ],
)
def test_a_census_event_that_is_not_exactly_ours_is_ignored(
    aws, invoke, api_calls, capsys, caplog, event: dict[str, Any]
):
    # Given a protected stream
    aws.create_stream("orders", 2)
    aws.put_policy(policy(name="orders"))
    capsys.readouterr()

    # When an event with the census source but another shape arrives
    result = invoke(event)

    # Then it is logged and ignored: nothing read, nothing published
    assert result["status"] == "ignored"
    assert api_calls.calls == []
    assert open_shards(capsys.readouterr().out) == {}
    assert any(r.getMessage() == "Ignoring a census event that does not parse" for r in caplog.records)
