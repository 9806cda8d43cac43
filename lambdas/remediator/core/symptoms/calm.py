"""What a scale-in must see before it removes shards: a calm stabilisation window.

Calm means: no write throttled, no read throttled, and no consumer behind, in every minute of the window. The
symptom that proposes a scale-in (under-utilised) declares these series (`calm_queries`); the reshard action's
`stabilisation-window` guardrail reads them back (`disturbances`). A series the evidence lacks is a reason to
wait, never a calm minute: a scale-in proposed by a symptom that did not read them is blocked.

Consumers, as the metrics show them:
- every polling consumer (Lambda event-source mappings, KCL 1.x/2.x polling) in the stream's
  GetRecords.IteratorAgeMilliseconds (aws-facts.md §6: "over all shards and consumers");
- each enhanced fan-out consumer the policy names (`efo: NAME`) in SubscribeToShardEvent.MillisBehindLatest;
- each Lambda consumer the policy names (`function: NAME`) in its AWS/Lambda IteratorAge, which also covers a
  mapping moved onto enhanced fan-out.
A KCL 2.x application reading through enhanced fan-out is seen only when the policy also names its consumer
(`efo: NAME`): its own MillisBehindLatest lives in the application's namespace, under dimensions the policy
does not pin down.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediator.core.evidence import Evidence
from remediator.core.metrics import MetricName, MetricQuery
from remediator.core.policy import StreamPolicy

# The evidence keys the other symptoms use for the same series, so that a plan reads alike whoever gathered it.
WRITE_THROTTLED_KEY = "write_throttled"
READ_THROTTLED_KEY = "read_throttled"
ITERATOR_AGE_KEY = "iterator_age_ms"

# One datapoint a minute: 2 h of each series. The stabilisation window of a policy may be at most this long.
CALM_EVIDENCE_MINUTES = 120


def efo_lag_key(index: int) -> str:
    return f"calm_efo_lag_{index}"


def lambda_lag_key(index: int) -> str:
    return f"calm_lambda_lag_{index}"


@dataclass(frozen=True)
class _Series:
    key: str
    noun: str  # how a person names it: "throttled writes", "enhanced fan-out consumer orders-efo"
    metric: MetricName
    lag: bool  # False: any datapoint above 0 disturbs; True: a datapoint at or above the lag threshold does

    @property
    def what(self) -> str:
        return f"{self.noun} ({self.metric.name})"


def _series(policy: StreamPolicy) -> list[_Series]:
    # Imported here, not above: importing a symptom module registers it, and the registry (hence the policy
    # reference) keeps the symptoms in the order of their files.
    from remediator.core.symptoms.efo_consumer_lag import MILLIS_BEHIND
    from remediator.core.symptoms.iterator_age import ITERATOR_AGE
    from remediator.core.symptoms.lambda_consumer_lag import LAMBDA_ITERATOR_AGE
    from remediator.core.symptoms.read_throttling import READ_THROTTLED
    from remediator.core.symptoms.write_throttling import WRITE_THROTTLED

    series = [
        _Series(WRITE_THROTTLED_KEY, "throttled writes", WRITE_THROTTLED, lag=False),
        _Series(READ_THROTTLED_KEY, "throttled reads", READ_THROTTLED, lag=False),
        _Series(ITERATOR_AGE_KEY, "polling consumers", ITERATOR_AGE, lag=True),
    ]
    series += [
        _Series(efo_lag_key(i), f"enhanced fan-out consumer {c.efo}", MILLIS_BEHIND, lag=True)
        for i, c in enumerate(policy.efo_consumers)
    ]
    series += [
        _Series(lambda_lag_key(i), f"Lambda consumer {c.function}", LAMBDA_ITERATOR_AGE, lag=True)
        for i, c in enumerate(policy.lambda_consumers)
    ]
    return series


def _dimensions(policy: StreamPolicy, key: str) -> dict[str, str]:
    if key.startswith("calm_efo_lag_"):
        return {"StreamName": policy.name, "ConsumerName": policy.efo_consumers[int(key.rsplit("_", 1)[1])].efo}
    if key.startswith("calm_lambda_lag_"):
        return {"FunctionName": policy.lambda_consumers[int(key.rsplit("_", 1)[1])].function}
    return {"StreamName": policy.name}


def calm_queries(policy: StreamPolicy) -> tuple[MetricQuery, ...]:
    """The series a scale-in's stabilisation window is judged on."""
    return tuple(MetricQuery(s.key, s.metric.on(**_dimensions(policy, s.key))) for s in _series(policy))


def disturbances(evidence: Evidence, policy: StreamPolicy, minutes: int, lag_ms: int) -> list[str]:
    """What broke the calm in the last `minutes`, one line each (empty: calm).

    Series are per-minute values without timestamps, oldest first, minutes without data left out; the last
    `minutes` values therefore cover at least the last `minutes` minutes (more when some were missing), which
    errs towards waiting. A minute with no datapoint is a calm minute: Kinesis publishes throttles and iterator
    age only when there are calls."""
    found = []
    if evidence.window_minutes < minutes:
        found.append(f"the evidence covers {evidence.window_minutes} minutes, fewer than the {minutes}-minute window")
    for series in _series(policy):
        if series.key not in evidence.series:
            found.append(f"the evidence has no series for {series.what}: the calm cannot be shown")
            continue
        values = evidence.values(series.key)[-minutes:]
        if not series.lag:
            total = sum(values)
            if total > 0:
                found.append(f"{total:,.0f} {series.what}")
            continue
        peak = max(values, default=0.0)
        if peak >= lag_ms:
            found.append(f"{series.what} {peak / 1000:,.0f} s behind (lagging from {lag_ms / 1000:,.0f} s)")
    return found
