"""A trace from a real stream's CloudWatch metrics (`backtest --from-cloudwatch --days N`): reads only.

For each minute of the `days` before `end` it reads the stream's AWS/Kinesis IncomingBytes and IncomingRecords
(statistic Sum, period 60 s) with GetMetricData, the only permission it needs being cloudwatch:GetMetricData.

- What it means: IncomingBytes and IncomingRecords count what was "successfully put" to the stream (Kinesis's
  metric list); writes it throttled are not in them (they are in WriteProvisionedThroughputExceeded, and producers
  retry them, so adding them would count some twice). On a stream that was throttled, the trace understates what
  producers offered during those minutes.
- A minute with no datapoint is read as a minute with no writes (0 bytes, 0 records): CloudWatch has no datapoint
  for a period in which no value was published, and a stream nobody writes to publishes none that counts. Only the
  last minutes before now are treated differently: CloudWatch shows a minute's datapoint a few minutes late, so
  trailing minutes without data within PUBLISH_DELAY_MINUTES of now are left out of the trace rather than read as
  silence.
- consumer_records_per_s stays None: CloudWatch publishes what consumers read (GetRecords.Records), not how much
  they could read, so the backtest's consumers read all they may.

CloudWatch's limits it keeps to (the GetMetricData API reference,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html, as quoted by the AWS SDK
references, e.g. https://docs.aws.amazon.com/goto/SdkForKotlin/monitoring-2010-08-01/GetMetricData and
https://docs.rs/aws-sdk-cloudwatch/latest/aws_sdk_cloudwatch/operation/get_metric_data/struct.GetMetricDataInput.html):
- "Data points with a period of 60 seconds (1-minute) are available for 15 days": days is 1..15, and the trace may
  not start more than 15 days before now; older minutes only exist as 5-minute or hourly aggregates.
- "a total of as many as 100,800 data points" per call, and MaxDatapoints (default 100,800) "the maximum number of
  data points the request should return before paginating": the range is split into windows (one day by default)
  whose datapoints (minutes x 2 metrics) fit one call, and each window follows NextToken until it is absent.
- StartTime and EndTime aligned to the period ("For better performance, specify StartTime and EndTime values
  that align with the value of the metric's Period"): `end` is rounded down to a whole minute; StartTime is
  inclusive, EndTime exclusive.
- Throttling ("Rate exceeded", code Throttling) is retried by the client's own retry mode (botocore's standard
  mode retries it with backoff); the caller passes a client made with remediator.clients.aws.client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator.rehearsal.trace import TraceMinute

NAMESPACE = "AWS/Kinesis"
BYTES_METRIC = "IncomingBytes"
RECORDS_METRIC = "IncomingRecords"
PERIOD_SECONDS = 60
STATISTIC = "Sum"
PERMISSION = "cloudwatch:GetMetricData"

# CloudWatch keeps one-minute datapoints for 15 days (see the module's docstring).
MAX_DAYS = 15
# GetMetricData returns at most this many datapoints per call, over all its queries.
MAX_DATAPOINTS_PER_CALL = 100_800
# The range is fetched in windows of this many minutes (a day: 2,880 datapoints a call, far below the limit, and
# one progress line a day of a 15-day fetch).
WINDOW_MINUTES = 24 * 60
# How late CloudWatch may publish a minute's datapoint. UNCONFIRMED: AWS documents no figure for Kinesis (its
# stream-level metrics are sent "every minute"); a few minutes is what the console shows in practice.
PUBLISH_DELAY_MINUTES = 5
MINUTE = timedelta(minutes=1)
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}

_QUERIES = {"incoming_bytes": BYTES_METRIC, "incoming_records": RECORDS_METRIC}


class CloudWatchTraceError(Exception):
    """The trace could not be built; the message names the stream and, for a permission, the IAM action.

    kind: "input" (days or end out of range: nothing was called), "aws" (a call failed or was refused; aws_error is
    AWS's error code or botocore's exception name) or "no-data" (CloudWatch answered, with no datapoint at all)."""

    def __init__(self, message: str, *, kind: str = "input", aws_error: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.aws_error = aws_error


def trace_from_cloudwatch(
    cloudwatch: Any,
    stream_name: str,
    days: int,
    end: datetime,
    progress: Callable[[str], None] | None = None,
    *,
    now: datetime | None = None,
    window_minutes: int = WINDOW_MINUTES,
    max_datapoints: int = MAX_DATAPOINTS_PER_CALL,
) -> list[TraceMinute]:
    """The stream's trace, one TraceMinute per minute of the `days` before `end` (rounded down to a whole minute),
    oldest first, read from CloudWatch with GetMetricData (Sum over 60 s of IncomingBytes and IncomingRecords).

    A minute with no datapoint is a minute with no writes (0); consumer_records_per_s is None (CloudWatch does not
    publish what consumers could read). `progress` receives a line per window fetched. `now` (default: the clock)
    bounds the 15-day retention of one-minute data; `window_minutes` and `max_datapoints` (GetMetricData's
    MaxDatapoints, the page size) are there to test the splitting and the pagination.

    Raises CloudWatchTraceError for days outside 1..15, an `end` without a time zone or in the future, a refused
    call (naming the permission cloudwatch:GetMetricData for AccessDenied), or no datapoint at all (a stream that
    does not exist in this account and region, or had no writes in the whole range)."""
    say = progress or (lambda _line: None)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start, stop = _time_range(stream_name, days, end, now)
    if not 1 <= window_minutes <= MAX_DATAPOINTS_PER_CALL // len(_QUERIES):
        raise ValueError(
            f"window_minutes {window_minutes}: a window's datapoints ({len(_QUERIES)} a minute) must fit one call"
            f" ({MAX_DATAPOINTS_PER_CALL})"
        )
    if not 1 <= max_datapoints <= MAX_DATAPOINTS_PER_CALL:
        raise ValueError(f"max_datapoints {max_datapoints}: GetMetricData returns 1 to {MAX_DATAPOINTS_PER_CALL}")

    values: dict[str, dict[datetime, float]] = {key: {} for key in _QUERIES}
    windows = _windows(start, stop, window_minutes)
    for number, (window_start, window_end) in enumerate(windows, start=1):
        pages = _fetch_window(cloudwatch, stream_name, window_start, window_end, max_datapoints, values)
        say(
            f"fetched {number} of {len(windows)} windows ({_iso(window_start)} to {_iso(window_end)},"
            f" {pages} page{'s' if pages != 1 else ''})"
        )

    if not any(values.values()):
        raise CloudWatchTraceError(
            f"stream {stream_name}: CloudWatch has no {BYTES_METRIC} or {RECORDS_METRIC} datapoint in {NAMESPACE}"
            f" from {_iso(start)} to {_iso(stop)}: the stream does not exist in this account and region, or had no"
            " writes in that time; check the stream's name, the region and the account of your credentials",
            kind="no-data",
        )
    minutes = int((stop - start) / MINUTE)
    timeline = [start + index * MINUTE for index in range(minutes)]
    last_seen = max(max(series) for series in values.values() if series)
    recent = now.replace(second=0, microsecond=0) - PUBLISH_DELAY_MINUTES * MINUTE
    unpublished = [moment for moment in timeline if moment > last_seen and moment >= recent]
    if unpublished:
        timeline = timeline[: len(timeline) - len(unpublished)]
        say(
            f"left out the last {len(unpublished)} minute{'s' if len(unpublished) != 1 else ''}"
            f" (from {_iso(unpublished[0])}): CloudWatch has not published them yet"
        )
    return [
        TraceMinute(
            timestamp=moment,
            incoming_bytes=values["incoming_bytes"].get(moment, 0.0),
            incoming_records=values["incoming_records"].get(moment, 0.0),
            consumer_records_per_s=None,
        )
        for moment in timeline
    ]


def _time_range(stream_name: str, days: int, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise CloudWatchTraceError(
            f"stream {stream_name}: --days {days!r}: must be a whole number of days from 1 to {MAX_DAYS}:"
            f" CloudWatch keeps one-minute datapoints for {MAX_DAYS} days"
        )
    if end.tzinfo is None or end.utcoffset() is None:
        raise CloudWatchTraceError(f"stream {stream_name}: end {end.isoformat()} has no time zone")
    stop = end.astimezone(UTC).replace(second=0, microsecond=0)
    this_minute = now.replace(second=0, microsecond=0)
    if stop > this_minute:
        raise CloudWatchTraceError(f"stream {stream_name}: end {_iso(stop)} is in the future (now {_iso(now)})")
    start = stop - timedelta(days=days)
    if start < this_minute - timedelta(days=MAX_DAYS):
        raise CloudWatchTraceError(
            f"stream {stream_name}: a trace from {_iso(start)} starts more than {MAX_DAYS} days ago:"
            f" CloudWatch keeps one-minute datapoints for {MAX_DAYS} days; use fewer days or a later end"
        )
    return start, stop


def _windows(start: datetime, stop: datetime, window_minutes: int) -> list[tuple[datetime, datetime]]:
    width = window_minutes * MINUTE
    windows = []
    moment = start
    while moment < stop:
        windows.append((moment, min(moment + width, stop)))
        moment += width
    return windows


def _queries(stream_name: str) -> list[dict[str, Any]]:
    return [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "StreamName", "Value": stream_name}],
                },
                "Period": PERIOD_SECONDS,
                "Stat": STATISTIC,
            },
            "ReturnData": True,
        }
        for key, metric in _QUERIES.items()
    ]


def _fetch_window(
    cloudwatch: Any,
    stream_name: str,
    start: datetime,
    end: datetime,
    max_datapoints: int,
    values: dict[str, dict[datetime, float]],
) -> int:
    """Reads one window into `values`, page by page (NextToken); returns the number of pages."""
    request: dict[str, Any] = {
        "MetricDataQueries": _queries(stream_name),
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
        "MaxDatapoints": max_datapoints,
    }
    pages = 0
    token: str | None = None
    seen: set[str] = set()
    while True:
        try:
            page = cloudwatch.get_metric_data(**request, **({"NextToken": token} if token else {}))
        except ClientError as error:
            raise _refused(stream_name, error) from error
        except BotoCoreError as error:
            raise CloudWatchTraceError(
                f"stream {stream_name}: GetMetricData failed: {error}", kind="aws", aws_error=type(error).__name__
            ) from error
        pages += 1
        for result in page.get("MetricDataResults", []):
            _check_status(stream_name, result, page)
            series = values.get(result.get("Id", ""))
            if series is None:
                continue
            for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                moment = stamp.astimezone(UTC).replace(second=0, microsecond=0)
                if start <= moment < end:
                    series[moment] = float(value)
        token = page.get("NextToken") or None
        if token is None:
            return pages
        if token in seen:  # AWS never repeats a token; a loop here would never end
            raise CloudWatchTraceError(
                f"stream {stream_name}: GetMetricData returned the same NextToken twice", kind="aws"
            )
        seen.add(token)


def _check_status(stream_name: str, result: dict[str, Any], page: dict[str, Any]) -> None:
    status = result.get("StatusCode", "Complete")
    if status in ("Complete", "PartialData"):  # PartialData: more follows with NextToken
        return
    messages = [message.get("Value", "") for message in result.get("Messages", []) + page.get("Messages", [])]
    detail = f" ({'; '.join(filter(None, messages))})" if any(messages) else ""
    if status == "Forbidden":
        raise CloudWatchTraceError(
            f"stream {stream_name}: CloudWatch refused to read {NAMESPACE} {result.get('Label') or result.get('Id')}"
            f"{detail}; the credentials need {PERMISSION}",
            kind="aws",
            aws_error=status,
        )
    raise CloudWatchTraceError(
        f"stream {stream_name}: GetMetricData answered {status} for {result.get('Id')}{detail}",
        kind="aws",
        aws_error=status,
    )


def _refused(stream_name: str, error: ClientError) -> CloudWatchTraceError:
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "")
    if code in ACCESS_DENIED:
        return CloudWatchTraceError(
            f"stream {stream_name}: access denied to GetMetricData ({message or code}); the credentials need the"
            f' IAM permission {PERMISSION} (on resource "*")',
            kind="aws",
            aws_error=code,
        )
    return CloudWatchTraceError(
        f"stream {stream_name}: GetMetricData failed: {code}: {message}", kind="aws", aws_error=code or None
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
