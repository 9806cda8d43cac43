"""`backtest --from-cloudwatch` (issue 10.3): a trace from a stream's CloudWatch metrics, within CloudWatch's limits.

Two AWS's:
- moto (in-process): datapoints put with put_metric_data are read back per minute, aligned, with zeros for the
  minutes without a datapoint.
- a loopback endpoint on 127.0.0.1 (PagingCloudWatch, built on the fault-injection suite's FaultyAws and its AWS
  JSON answers) that answers GetMetricData as AWS does, from moto's datapoints: at most MaxDatapoints datapoints
  a page, the rest behind a NextToken, PartialData until the last page; and Throttling or AccessDenied on demand.
  It covers a gap in moto: moto 5.2's GetMetricData ignores MaxDatapoints and NextToken (moto/cloudwatch/
  responses.py passes neither to the backend, which returns every datapoint at once), so with moto alone no
  test could see a second page. botocore speaks CloudWatch's AWS JSON 1.0 protocol to it (X-Amz-Target
  GraniteServiceVersion20100801.GetMetricData, query-compatible errors in x-amzn-query-error), through the
  product's read client (remediator.clients.aws.client: botocore's standard retry mode).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws
from remediator.clients import aws as aws_clients
from remediator.clients.cloudwatch_trace import (
    MAX_DATAPOINTS_PER_CALL,
    CloudWatchTraceError,
    trace_from_cloudwatch,
)
from remediator.rehearsal.trace import TraceMinute

from tests.fakes import REGION
from tests.integration.test_fault_injection import FaultyAws

STREAM = "orders"
MINUTE = timedelta(minutes=1)
# "now" in every test: mid-minute, so the alignment to whole minutes shows.
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30) + timedelta(seconds=42)
THIS_MINUTE = NOW.replace(second=0)


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def put(cloudwatch: Any, at: datetime, incoming_bytes: float | None, incoming_records: float | None) -> None:
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "StreamName", "Value": STREAM}],
            "Timestamp": at,
            "Value": value,
            "Unit": unit,
        }
        for name, value, unit in (
            ("IncomingBytes", incoming_bytes, "Bytes"),
            ("IncomingRecords", incoming_records, "Count"),
        )
        if value is not None
    ]
    cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data)


def by_minute(rows: list[TraceMinute]) -> dict[datetime, tuple[float, float]]:
    return {row.timestamp: (row.incoming_bytes, row.incoming_records) for row in rows}


# --- against moto ----------------------------------------------------------------------------------------------


def test_one_row_per_minute_aligned_with_zeros_where_nothing_was_written(cloudwatch: Any) -> None:
    # Given a day of a stream's metrics: the first and the last minute, two datapoints within one minute (at 10 s
    # and 50 s past it), a minute with bytes only, and another stream's datapoint
    start = THIS_MINUTE - timedelta(days=1)
    put(cloudwatch, start, 600.0, 6.0)
    put(cloudwatch, start + 100 * MINUTE + timedelta(seconds=10), 1_000.0, 10.0)
    put(cloudwatch, start + 100 * MINUTE + timedelta(seconds=50), 500.0, 5.0)
    put(cloudwatch, start + 200 * MINUTE, 42.0, None)
    put(cloudwatch, THIS_MINUTE - MINUTE, 7.0, 1.0)
    cloudwatch.put_metric_data(
        Namespace="AWS/Kinesis",
        MetricData=[
            {
                "MetricName": "IncomingBytes",
                "Dimensions": [{"Name": "StreamName", "Value": "someone-else"}],
                "Timestamp": start + 300 * MINUTE,
                "Value": 9e9,
            }
        ],
    )
    lines: list[str] = []
    # When a one-day trace ending now (42 s into the minute) is built
    rows = trace_from_cloudwatch(cloudwatch, STREAM, 1, NOW, lines.append, now=NOW)
    # Then it has one row per whole minute of the day before the current minute, oldest first
    assert len(rows) == 24 * 60
    assert [row.timestamp for row in rows] == [start + index * MINUTE for index in range(24 * 60)]
    assert all(row.timestamp.tzinfo is UTC for row in rows)
    # And the datapoints land in their minutes (summed within one), every other minute is zero, no consumer rate
    assert {moment: values for moment, values in by_minute(rows).items() if values != (0.0, 0.0)} == {
        start: (600.0, 6.0),
        start + 100 * MINUTE: (1_500.0, 15.0),
        start + 200 * MINUTE: (42.0, 0.0),
        THIS_MINUTE - MINUTE: (7.0, 1.0),
    }
    assert {row.consumer_records_per_s for row in rows} == {None}
    # And it said what it fetched: one window (a day)
    assert lines == [
        f"fetched 1 of 1 windows ({start:%Y-%m-%dT%H:%MZ} to {THIS_MINUTE:%Y-%m-%dT%H:%MZ}, 1 page)",
    ]


def test_the_last_minutes_not_yet_published_are_left_out_older_silence_is_zero(cloudwatch: Any) -> None:
    # Given a stream whose last datapoint is 8 minutes old
    put(cloudwatch, THIS_MINUTE - 8 * MINUTE, 100.0, 1.0)
    lines: list[str] = []
    # When a trace ending now is built
    rows = trace_from_cloudwatch(cloudwatch, STREAM, 1, NOW, lines.append, now=NOW)
    # Then the last 5 minutes (CloudWatch may not have them yet) are left out, and the 2 before them are zeros
    assert rows[-1].timestamp == THIS_MINUTE - 6 * MINUTE
    assert by_minute(rows[-3:]) == {
        THIS_MINUTE - 8 * MINUTE: (100.0, 1.0),
        THIS_MINUTE - 7 * MINUTE: (0.0, 0.0),
        THIS_MINUTE - 6 * MINUTE: (0.0, 0.0),
    }
    assert lines[-1] == (
        f"left out the last 5 minutes (from {THIS_MINUTE - 5 * MINUTE:%Y-%m-%dT%H:%MZ}):"
        " CloudWatch has not published them yet"
    )
    # And a trace ending 5 minutes ago keeps its trailing silent minutes: older than the publishing delay
    earlier = trace_from_cloudwatch(cloudwatch, STREAM, 1, NOW - timedelta(minutes=5), now=NOW)
    assert earlier[-1].timestamp == THIS_MINUTE - 6 * MINUTE
    assert len(earlier) == 24 * 60


def test_a_stream_without_any_datapoint_is_named_with_what_to_check(cloudwatch: Any) -> None:
    # Given no metrics for the stream (it does not exist here, or nobody wrote to it)
    # When its trace is built / Then the error names the stream, the metrics and the range
    with pytest.raises(CloudWatchTraceError) as raised:
        trace_from_cloudwatch(cloudwatch, "nowhere", 2, NOW, now=NOW)
    start = THIS_MINUTE - timedelta(days=2)
    assert str(raised.value) == (
        f"stream nowhere: CloudWatch has no IncomingBytes or IncomingRecords datapoint in AWS/Kinesis from"
        f" {start:%Y-%m-%dT%H:%MZ} to {THIS_MINUTE:%Y-%m-%dT%H:%MZ}: the stream does not exist in this account and"
        " region, or had no writes in that time; check the stream's name, the region and the account of your"
        " credentials"
    )
    assert raised.value.kind == "no-data"


BAD_RANGES = [
    pytest.param(0, NOW, "--days 0: must be a whole number of days from 1 to 15", id="zero-days"),
    pytest.param(16, NOW, "--days 16: must be a whole number of days from 1 to 15", id="sixteen-days"),
    pytest.param(True, NOW, "--days True: must be a whole number", id="bool"),
    pytest.param("7", NOW, "--days '7': must be a whole number", id="text"),
    pytest.param(1, NOW.replace(tzinfo=None), "has no time zone", id="naive-end"),
    pytest.param(1, NOW + timedelta(minutes=2), "is in the future", id="future-end"),
    pytest.param(10, NOW - timedelta(days=6), "starts more than 15 days ago", id="too-old"),
]


@pytest.mark.parametrize(("days", "end", "message"), BAD_RANGES)
def test_a_range_beyond_one_minute_retention_is_refused_before_any_call(days: Any, end: datetime, message: str) -> None:
    # Given a client that must not be called
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"called {name}")

    # When a range CloudWatch cannot serve at one minute is asked for / Then a clear error, no call
    with pytest.raises(CloudWatchTraceError, match=f"^stream {STREAM}: .*{message}".replace("(", r"\(")) as raised:
        trace_from_cloudwatch(NoCalls(), STREAM, days, end, now=NOW)
    assert raised.value.kind == "input"


def test_fifteen_days_ending_now_is_the_longest_range() -> None:
    # Given 15 days ending now (within the retention, by whole minutes) / When fetched / Then it asks; 15 days
    # ending a minute earlier than now is fine too, and 15 days ending a minute later would be in the future
    calls: list[dict[str, Any]] = []

    class Empty:
        def get_metric_data(self, **request: Any) -> dict[str, Any]:
            calls.append(request)
            return {"MetricDataResults": []}

    with pytest.raises(CloudWatchTraceError, match="no IncomingBytes or IncomingRecords datapoint"):
        trace_from_cloudwatch(Empty(), STREAM, 15, NOW, now=NOW)
    assert calls[0]["StartTime"] == THIS_MINUTE - timedelta(days=15)
    assert calls[-1]["EndTime"] == THIS_MINUTE


# --- against a loopback CloudWatch that paginates as AWS does -----------------------------------------------------

TARGET = "GraniteServiceVersion20100801"
OK, THROTTLE_ONCE, DENIED = "ok", "throttle-once", "denied"


class PagingCloudWatch(FaultyAws):
    """GetMetricData as AWS answers it (AWS JSON 1.0), from moto's datapoints, MaxDatapoints a page.

    How AWS spreads a page's datapoints over its queries is not documented (UNCONFIRMED); this one fills a page
    with the first query's datapoints, then the next query's, so a page may end in the middle of a series. The
    code under test maps each value by its timestamp, so any split reads the same."""

    cloudwatch_mode: ClassVar[str] = OK
    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        prefix, _, operation = self.headers.get("X-Amz-Target", "").partition(".")
        params = self._body()
        PagingCloudWatch.calls.append(
            {"operation": operation, "attempt": self.headers.get("amz-sdk-request", ""), **params}
        )
        if prefix != TARGET or operation != "GetMetricData":
            return self._error(400, "InvalidAction", f"{operation} is not served here")
        if PagingCloudWatch.cloudwatch_mode == DENIED:
            return self._error(
                403,
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: cloudwatch:GetMetricData",
            )
        if PagingCloudWatch.cloudwatch_mode == THROTTLE_ONCE and len(PagingCloudWatch.calls) == 1:
            return self._error(400, "Throttling", "Rate exceeded")
        return self._answer(200, self._page(params), "application/x-amz-json-1.0")

    def _page(self, params: dict[str, Any]) -> dict[str, Any]:
        full = boto3.client("cloudwatch", region_name=REGION).get_metric_data(
            MetricDataQueries=params["MetricDataQueries"],
            StartTime=datetime.fromtimestamp(params["StartTime"], UTC),
            EndTime=datetime.fromtimestamp(params["EndTime"], UTC),
            ScanBy=params.get("ScanBy", "TimestampDescending"),
        )["MetricDataResults"]
        points = [
            (result["Id"], stamp, value)
            for result in full
            for stamp, value in zip(result["Timestamps"], result["Values"], strict=True)
        ]
        offset = json.loads(base64.b64decode(params["NextToken"]))["offset"] if params.get("NextToken") else 0
        size = int(params.get("MaxDatapoints") or MAX_DATAPOINTS_PER_CALL)
        page, rest = points[offset : offset + size], points[offset + size :]
        results = [
            {
                "Id": result["Id"],
                "Label": result["Label"],
                "Timestamps": [stamp for key, stamp, _ in page if key == result["Id"]],
                "Values": [value for key, _, value in page if key == result["Id"]],
                "StatusCode": "PartialData" if rest else "Complete",
            }
            for result in full
        ]
        answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if rest:
            answer["NextToken"] = base64.b64encode(json.dumps({"offset": offset + size}).encode()).decode()
        return answer

    def _error(self, status: int, code: str, message: str) -> None:
        # AWS JSON 1.0 with the query protocol's code in x-amzn-query-error, which botocore reads for a
        # query-compatible service (CloudWatch). UNCONFIRMED: the exact __type AWS sends beside it.
        headers = {"x-amzn-query-error": f"{code};Sender"}
        body = {"__type": f"com.amazonaws.cloudwatch#{code}", "message": message}
        return self._answer(status, body, "application/x-amz-json-1.0", headers)


@pytest.fixture
def loopback(cloudwatch: Any) -> Iterator[Any]:
    """The product's read client for CloudWatch, against PagingCloudWatch (backed by the same moto)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), PagingCloudWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    PagingCloudWatch.cloudwatch_mode, PagingCloudWatch.calls = OK, []
    try:
        yield aws_clients.client(
            "cloudwatch", region=REGION, endpoint_url=f"http://127.0.0.1:{server.server_address[1]}"
        )
    finally:
        server.shutdown()
        server.server_close()


def test_fifteen_days_are_fetched_in_windows_that_fit_and_pages_that_follow_next_token(
    cloudwatch: Any, loopback: Any
) -> None:
    # Given 15 days of a stream's metrics: a datapoint at the first minute, at the last, and every 4 hours
    start = THIS_MINUTE - timedelta(days=15)
    expected: dict[datetime, tuple[float, float]] = {}
    for index, moment in enumerate(
        [*(start + hours * timedelta(hours=4) for hours in range(90)), THIS_MINUTE - MINUTE]
    ):
        put(cloudwatch, moment, 1000.0 + index, float(index + 1))
        expected[moment] = (1000.0 + index, float(index + 1))
    lines: list[str] = []
    # When its 15-day trace is fetched in windows of one day and pages of 5 datapoints (CloudWatch returns only
    # the minutes that have one: 12 or 14 a day here, so 3 pages a day, one ending inside a series)
    rows = trace_from_cloudwatch(loopback, STREAM, 15, NOW, lines.append, now=NOW, max_datapoints=5)
    # Then every minute of the 15 days is there, the datapoints in their minutes and zeros elsewhere
    assert len(rows) == 15 * 24 * 60
    assert {moment: values for moment, values in by_minute(rows).items() if values != (0.0, 0.0)} == expected
    # And the requests were 15 windows of one day (2,880 datapoints each, within a call's 100,800), back to back,
    # aligned to whole minutes, each read in 3 pages of at most 5 datapoints through NextToken
    calls = PagingCloudWatch.calls
    assert {call["operation"] for call in calls} == {"GetMetricData"}  # reads only
    windows = sorted({(call["StartTime"], call["EndTime"]) for call in calls})
    assert windows == [
        ((start + day * timedelta(days=1)).timestamp(), (start + (day + 1) * timedelta(days=1)).timestamp())
        for day in range(15)
    ]
    assert all(int(end - begin) // 60 * 2 <= MAX_DATAPOINTS_PER_CALL for begin, end in windows)
    assert len(calls) == 15 * 3
    assert [("NextToken" in call) for call in calls] == [False, True, True] * 15
    assert {call["MaxDatapoints"] for call in calls} == {5}
    assert {call["ScanBy"] for call in calls} == {"TimestampAscending"}
    # And it said so, window by window
    assert len(lines) == 15
    assert lines[2].startswith("fetched 3 of 15 windows (") and lines[2].endswith(", 3 pages)")


def test_a_window_that_fits_one_page_is_one_call(cloudwatch: Any, loopback: Any) -> None:
    # Given a datapoint / When a 2-day trace is fetched in windows of 6 hours with the default page size
    put(cloudwatch, THIS_MINUTE - timedelta(hours=30), 5.0, 1.0)
    rows = trace_from_cloudwatch(loopback, STREAM, 2, NOW, now=NOW, window_minutes=6 * 60)
    # Then 8 windows, one call each, no NextToken, and the datapoint in its minute
    assert len(PagingCloudWatch.calls) == 8
    assert not any("NextToken" in call for call in PagingCloudWatch.calls)
    assert by_minute(rows)[THIS_MINUTE - timedelta(hours=30)] == (5.0, 1.0)


def test_throttling_is_retried_by_botocores_retry_layer(cloudwatch: Any, loopback: Any) -> None:
    # Given CloudWatch answers the first call with Throttling ("Rate exceeded")
    put(cloudwatch, THIS_MINUTE - 10 * MINUTE, 5.0, 1.0)
    PagingCloudWatch.cloudwatch_mode = THROTTLE_ONCE
    # When a trace is fetched through the product's read client
    rows = trace_from_cloudwatch(loopback, STREAM, 1, NOW, now=NOW)
    # Then botocore sent the same request again (attempt 2) and the trace is whole
    first, second = PagingCloudWatch.calls
    assert "attempt=1;" in first["attempt"] and "attempt=2;" in second["attempt"]
    assert {key: value for key, value in first.items() if key != "attempt"} == {
        key: value for key, value in second.items() if key != "attempt"
    }
    assert by_minute(rows)[THIS_MINUTE - 10 * MINUTE] == (5.0, 1.0)


def test_access_denied_names_the_stream_and_the_permission(cloudwatch: Any, loopback: Any) -> None:
    # Given credentials without cloudwatch:GetMetricData
    PagingCloudWatch.cloudwatch_mode = DENIED
    # When a trace is fetched / Then the error names the stream and the IAM permission, after one call (no retry)
    with pytest.raises(CloudWatchTraceError) as raised:
        trace_from_cloudwatch(loopback, STREAM, 1, NOW, now=NOW)
    assert str(raised.value) == (
        f"stream {STREAM}: access denied to GetMetricData (User: arn:aws:iam::123456789012:user/dev is not authorized"
        " to perform: cloudwatch:GetMetricData); the credentials need the IAM permission cloudwatch:GetMetricData"
        ' (on resource "*")'
    )
    assert (raised.value.kind, raised.value.aws_error) == ("aws", "AccessDenied")
    assert len(PagingCloudWatch.calls) == 1
