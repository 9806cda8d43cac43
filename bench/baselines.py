"""The alternatives the default policy is measured against, each modelled from its PUBLISHED rules.

Every baseline is a `Scaler` (remediator.rehearsal.simulator): it sees each simulated minute's CloudWatch-like
figures (MinuteStats) after the minute, and acts only through StreamControl, whose UpdateShardCount enforces
AWS's limits (at most 2x up or down by half per call, a stream that is resharding answers ResourceInUseException,
10 scalings per rolling 24 h). A refused call is recorded by the simulator and the baseline carries on as its
published code does (retrying at its next check). The metrics they read are the ones their code reads:
IncomingBytes / IncomingRecords (or PutRecord(s).Bytes/Records) count what Kinesis ACCEPTED, not what producers
offered, so a throttled stream looks 100 % used, never 300 %.

One departure from the published examples, the same for every row: their maximum shard counts (8 in the
Application Auto Scaling sample, 16 in kinesis-scaling-utils' example) are replaced by MAX_SHARDS, the ceiling the
default policy gets too, so that no row loses to a configuration ceiling.

Sources (read with the repositories' own text; commits as stored):
- awslabs/amazon-kinesis-scaling-utils @ 23ba22041fb25a9e4b6d6f2490874625d784566f: README.md ("Using scale
  percentage" example), StreamMonitor.java (processCloudwatchMetrics, run), StreamMetricManager.java (1-minute Sum
  / 60), StreamScalingUtils.getNewShardCount, KinesisOperationType.java (PUT 1,048,576 B/s and 1,000 records/s per
  shard; GET 2,097,152 B/s and 2,000 records/s).
- aws-samples/kinesis-auto-scaling @ e1e52f88bb41303f3ab699408255591c4fbcccbf: kinesis_scaling_cf.yaml (scale-up
  alarm: 5-minute Sums, MAX(bytes, records usage factor) >= 0.75 for 5 of 5 datapoints; scale-down alarm: < 0.25
  for 57 of 60), golang/scale.go (calculateNewShardCount: x2 / halve; alarms reset to INSUFFICIENT_DATA after a
  scaling; errorHandler sets the alarm back so that it fires again).
- aws-samples/aws-application-auto-scaling-kinesis @ 9fe4d11dbfdce08e698a72267e74484779737894:
  cloudformation/custom-application-autoscaling-kinesis.yaml (CWAlarmOut: IncomingRecords Sum, 60 s, 1 of 1,
  GreaterThanThreshold; CWAlarmIn: Sum, 300 s, 3 of 3, LessThanThreshold; StepScaling policies +1 / -1,
  Cooldown 600 s), index.py (update_alarm_out / update_alarm_in: both thresholds become 80 % of the shards'
  records per minute after each scaling). The sample uses StepScaling, not TargetTracking: it is modelled as
  written.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from remediator.core import limits
from remediator.rehearsal.simulator import MinuteStats, Scaler, SimulatedAwsError, StreamControl
from remediator.rehearsal.trace import TraceMinute

MAX_SHARDS = 64  # the same ceiling for every scaler, ours included (see the module docstring)
SECONDS = 60  # one simulated minute
ACTIVE = "ACTIVE"


def _status(value: object) -> str:
    """A stream status as text, whether the simulator hands a StrEnum or a plain string."""
    return str(getattr(value, "value", value))


def _update(stream: StreamControl, target: int) -> bool:
    """UpdateShardCount as the baselines' code calls it; False when AWS (the simulator) refused it."""
    try:
        stream.update_shard_count(target)
    except SimulatedAwsError:
        return False
    return True


class NoRemediation:
    """No scaler at all: the shards the stream starts with, whatever happens."""

    name = "no remediation"

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        return None


# --- awslabs/amazon-kinesis-scaling-utils ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingUtilsConfig:
    """A streamMonitor of kinesis-scaling-utils: README.md's "Using scale percentage" example (PUT and GET)."""

    check_interval_minutes: int = 5  # checkInterval: 300 (seconds)
    up_threshold_pct: float = 75  # scaleUp.scaleThresholdPct
    up_after_mins: int = 5  # scaleUp.scaleAfterMins
    up_pct: int = 150  # scaleUp.scalePct: new = ceil(current x 1.5) (getNewShardCount, >= 100 is a factor)
    up_cool_off_mins: int = 15  # scaleUp.coolOffMins
    down_threshold_pct: float = 25  # scaleDown.scaleThresholdPct
    down_after_mins: int = 15  # scaleDown.scaleAfterMins
    down_pct: int = 25  # scaleDown.scalePct: new = current - floor(current x 0.25)
    down_cool_off_mins: int = 60  # scaleDown.coolOffMins
    min_shards: int = 1
    max_shards: int = MAX_SHARDS


# KinesisOperationType.java: the per-shard maxima the tool divides by (it counts 1 MB as 1,048,576 bytes).
PUT_MAX = {"bytes": 1_048_576, "records": 1_000}
GET_MAX = {"bytes": 2_097_152, "records": 2_000}


def scaling_utils_new_count(current: int, direction: str, config: ScalingUtilsConfig) -> int:
    """StreamScalingUtils.getNewShardCount with scalePct (no scaleCount), then StreamScaler's min/max clamp."""
    if direction == "UP":
        factor = config.up_pct / 100 if config.up_pct >= 100 else (100 + config.up_pct) / 100
        target = math.ceil(current * factor)
    else:
        if config.down_pct > 100:
            target = math.floor(current / (config.down_pct / 100))
        else:
            target = current - math.floor(current * config.down_pct / 100)
        target = max(target, 1)
    return min(max(target, config.min_shards), config.max_shards)


def scaling_utils_vote(samples: Sequence[float], config: ScalingUtilsConfig, window: int) -> str:
    """One metric's vote from its per-minute utilisations (fractions): UP when at least up_after_mins samples are
    above the scale-up threshold, else DOWN when at least down_after_mins are below the scale-down one (a minute
    without a datapoint counts as low, as StreamMonitor adds `cwSampleDuration - metrics.size()` low samples)."""
    high = sum(1 for s in samples if s > config.up_threshold_pct / 100)
    low = sum(1 for s in samples if s < config.down_threshold_pct / 100) + max(window - len(samples), 0)
    if high >= config.up_after_mins:
        return "UP"
    if low >= config.down_after_mins:
        return "DOWN"
    return "NONE"


def scaling_utils_direction(put: str, get: str) -> str:
    """README's PUT x GET table: UP if either votes UP, DOWN only if both vote DOWN."""
    if "UP" in (put, get):
        return "UP"
    if put == get == "DOWN":
        return "DOWN"
    return "NONE"


class KinesisScalingUtils:
    """awslabs kinesis-scaling-utils' StreamMonitor: every checkInterval, it reads the last
    max(scaleUp.scaleAfterMins, scaleDown.scaleAfterMins) one-minute Sums of the PUT and GET metrics, divided by 60
    and by the open shards' maxima. Per operation, the metric (bytes or records) with the higher utilisation decides
    (the code takes a running average of its samples; the mean is used here). PUT x GET are combined by the README's
    table; a scale up waits coolOffMins after the last scale up, a scale down after the last scale down. The monitor
    blocks while the stream is resharding (it waits for ACTIVE). On LimitExceeded the tool falls back to SplitShard /
    MergeShards, which StreamControl does not offer: the refusal is recorded and it tries again next check."""

    name = "kinesis-scaling-utils"

    def __init__(self, config: ScalingUtilsConfig | None = None) -> None:
        self.config = config or ScalingUtilsConfig()
        self.window = max(self.config.up_after_mins, self.config.down_after_mins)
        self._history: deque[MinuteStats] = deque(maxlen=self.window)
        self._last_up: int | None = None
        self._last_down: int | None = None

    def _utilisations(self, shards: int) -> dict[str, list[float]]:
        put_bytes, put_records, get_bytes, get_records = [], [], [], []
        for m in self._history:
            record_bytes = m.incoming_bytes / m.incoming_records if m.incoming_records else 0.0
            put_bytes.append(m.incoming_bytes / SECONDS / (shards * PUT_MAX["bytes"]))
            put_records.append(m.incoming_records / SECONDS / (shards * PUT_MAX["records"]))
            # GetRecords.Bytes is not in MinuteStats: the records read x the minute's mean record size.
            get_bytes.append(m.outgoing_records * record_bytes / SECONDS / (shards * GET_MAX["bytes"]))
            get_records.append(m.outgoing_records / SECONDS / (shards * GET_MAX["records"]))
        return {"put_bytes": put_bytes, "put_records": put_records, "get_bytes": get_bytes, "get_records": get_records}

    def _vote(self, by_bytes: list[float], by_records: list[float]) -> str:
        mean_bytes = sum(by_bytes) / len(by_bytes) if by_bytes else 0.0
        mean_records = sum(by_records) / len(by_records) if by_records else 0.0
        return scaling_utils_vote(by_bytes if mean_bytes >= mean_records else by_records, self.config, self.window)

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        self._history.append(minute)
        if (minute.index + 1) % self.config.check_interval_minutes:
            return
        view = stream.describe()
        if _status(view.status) != ACTIVE:
            return  # StreamScaler waits for the stream to be ACTIVE again
        u = self._utilisations(view.shards)
        direction = scaling_utils_direction(
            self._vote(u["put_bytes"], u["put_records"]), self._vote(u["get_bytes"], u["get_records"])
        )
        now = minute.index
        if direction == "UP":
            if self._last_up is not None and now - self._last_up < self.config.up_cool_off_mins:
                return
            target = scaling_utils_new_count(view.shards, "UP", self.config)
            if target != view.shards:
                _update(stream, target)
                self._last_up = now  # StreamMonitor sets lastScaleUp whatever the call returned
        elif direction == "DOWN":
            if self._last_down is not None and now - self._last_down < self.config.down_cool_off_mins:
                return
            target = scaling_utils_new_count(view.shards, "DOWN", self.config)
            if target != view.shards:
                _update(stream, target)
                self._last_down = now


# --- aws-samples/kinesis-auto-scaling ----------------------------------------------------------------------------


def usage_factor(bytes_sum: float, records_sum: float, shards: int, period_minutes: int = 5) -> float:
    """The sample's alarm metric math: MAX(bytes / (1024 x 1024 x 60 x period x shards),
    records / (1000 x 60 x period x shards)) over a period's Sums (FILL(m, 0): a missing Sum is 0)."""
    seconds = 60 * period_minutes
    return max(bytes_sum / (1024 * 1024 * seconds * shards), records_sum / (1000 * seconds * shards))


def alarm_breaches(values: Sequence[float], threshold: float, *, below: bool, evaluation: int, datapoints: int) -> bool:
    """M out of N: at least `datapoints` of the last `evaluation` values breach (>= threshold, or < when `below`)."""
    recent = list(values)[-evaluation:]
    if len(recent) < evaluation:
        return False  # not enough datapoints yet: the alarm stays INSUFFICIENT_DATA
    breaching = sum(1 for v in recent if (v < threshold if below else v >= threshold))
    return breaching >= datapoints


class AwsSamplesAutoscaler:
    """aws-samples/kinesis-auto-scaling: two metric-math alarms on 5-minute Sums, whose shard count (s1) the Lambda
    rewrites after each scaling, so past periods are re-read against the new count. Scale up: usage >= 0.75 in 5 of
    5 periods -> double. Scale down: usage < 0.25 in 57 of 60 periods (threshold -1 at one shard) -> halve. An alarm
    acts when it goes to ALARM; after a scaling both are reset to INSUFFICIENT_DATA (so a breach that persists fires
    again at the next evaluation), and a failed UpdateShardCount sets the alarm back so that it fires again."""

    name = "aws-samples autoscaler"
    PERIOD = 5
    UP_THRESHOLD, UP_EVALUATION, UP_DATAPOINTS = 0.75, 5, 5
    DOWN_THRESHOLD, DOWN_EVALUATION, DOWN_DATAPOINTS = 0.25, 60, 57

    def __init__(self, max_shards: int = MAX_SHARDS) -> None:
        self.max_shards = max_shards
        self._sums: list[tuple[float, float]] = []  # (bytes, records) per 5-minute period
        self._bytes = 0.0
        self._records = 0.0
        self._up_state = "INSUFFICIENT_DATA"
        self._down_state = "INSUFFICIENT_DATA"

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        self._bytes += minute.incoming_bytes
        self._records += minute.incoming_records
        if (minute.index + 1) % self.PERIOD:
            return
        self._sums.append((self._bytes, self._records))
        self._bytes = self._records = 0.0
        shards = stream.describe().shards
        usage = [usage_factor(b, r, shards, self.PERIOD) for b, r in self._sums]
        up = alarm_breaches(usage, self.UP_THRESHOLD, below=False, evaluation=self.UP_EVALUATION, datapoints=5)
        down = shards > 1 and alarm_breaches(
            usage, self.DOWN_THRESHOLD, below=True, evaluation=self.DOWN_EVALUATION, datapoints=self.DOWN_DATAPOINTS
        )
        if up and self._up_state != "ALARM":
            self._up_state = "ALARM"
            self._scale(stream, min(shards * 2, self.max_shards), shards, "up")
        elif not up:
            self._up_state = "OK"
        if down and self._down_state != "ALARM":
            self._down_state = "ALARM"
            self._scale(stream, max(shards // 2, 1), shards, "down")
        elif not down:
            self._down_state = "OK"

    def _scale(self, stream: StreamControl, target: int, shards: int, which: str) -> None:
        if target == shards:
            return
        if _update(stream, target):
            self._up_state = self._down_state = "INSUFFICIENT_DATA"
        else:
            # errorHandler: the alarm is set back (to OK) so that it goes to ALARM, and scales, again.
            if which == "up":
                self._up_state = "OK"
            else:
                self._down_state = "OK"


# --- aws-samples/aws-application-auto-scaling-kinesis ------------------------------------------------------------


class ApplicationAutoScaling:
    """Application Auto Scaling on a custom resource, as aws-samples/aws-application-auto-scaling-kinesis deploys
    it: a scale-out alarm on IncomingRecords (Sum over 60 s > threshold, 1 of 1) and a scale-in alarm (Sum over
    300 s < threshold, 3 of 3), each with a StepScaling policy of +1 / -1 shard and a 600 s cooldown; after each
    scaling its Lambda sets both thresholds to 80 % of the shards' records per minute (1,000 x shards x 60 x 0.8).
    The alarms watch records only: a stream that is full in bytes never scales out.

    Step scaling (https://docs.aws.amazon.com/autoscaling/application/userguide/step-scaling-policy-overview.html,
    and StepScalingPolicyConfiguration.Cooldown): the adjustments continue for additional breaches until the alarm
    returns to OK; within a scale-out's cooldown the capacity it added counts towards the next one (with +1 steps:
    nothing more is added); a scale-in is blocked until its cooldown has expired, and a scale-out is not blocked
    by a scale-in's cooldown."""

    name = "App Auto Scaling (sample)"
    COOLDOWN_MINUTES = 10
    IN_PERIOD, IN_EVALUATION = 5, 3

    def __init__(self, max_shards: int = MAX_SHARDS, min_shards: int = 1) -> None:
        self.max_shards = max_shards
        self.min_shards = min_shards
        self._last_out: int | None = None
        self._last_in: int | None = None
        self._records = 0.0
        self._in_sums: list[float] = []

    @staticmethod
    def threshold(shards: int) -> float:
        """index.py: (1000 x shards x 60) x 80 / 100, the same for both alarms."""
        return 1000 * shards * 60 * 80 / 100

    def _cooling(self, last: int | None, now: int) -> bool:
        return last is not None and now - last < self.COOLDOWN_MINUTES

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        self._records += minute.incoming_records
        if (minute.index + 1) % self.IN_PERIOD == 0:
            self._in_sums.append(self._records)
            self._records = 0.0
        view = stream.describe()
        threshold = self.threshold(view.shards)
        out_alarm = minute.incoming_records > threshold
        in_alarm = len(self._in_sums) >= self.IN_EVALUATION and all(
            s < threshold for s in self._in_sums[-self.IN_EVALUATION :]
        )
        now = minute.index
        if out_alarm:
            if not self._cooling(self._last_out, now) and view.shards < self.max_shards:
                self._last_out = now if _update(stream, view.shards + 1) else self._last_out
        elif in_alarm and not self._cooling(self._last_in, now) and view.shards > self.min_shards:
            self._last_in = now if _update(stream, view.shards - 1) else self._last_in


# --- the lower bound ---------------------------------------------------------------------------------------------


def shards_needed(row: TraceMinute) -> int:
    """The fewest shards that accept the minute's offered writes: 1 MB/s and 1,000 records/s per shard."""
    by_bytes = row.incoming_bytes / SECONDS / limits.SHARD_WRITE_BYTES_PER_SECOND
    by_records = row.incoming_records / SECONDS / limits.SHARD_WRITE_RECORDS_PER_SECOND
    return max(1, math.ceil(by_bytes - 1e-9), math.ceil(by_records - 1e-9))


def lower_bound(trace: Sequence[TraceMinute]) -> list[int]:
    """Exactly the shards needed each minute: computed, with no AWS limit (no reshard delay, no 2x step, no daily
    cap). No real scaler can reach it; it is the yardstick for shard-hours."""
    return [shards_needed(row) for row in trace]


def scalers() -> list[Scaler]:
    """The autoscaler baselines, fresh (each keeps state across the minutes of one simulation)."""
    return [KinesisScalingUtils(), AwsSamplesAutoscaler(), ApplicationAutoScaling()]
