"""Logger, Tracer and Metrics, created once for the whole remediator, and the metrics an outcome publishes."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from remediator.core.deployment import METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric
from remediator.core.outcome import Outcome, OutcomeStatus, StepResult

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

STEP_METRICS = {
    StepResult.APPLIED: RemediatorMetric.ACTIONS_APPLIED,
    StepResult.DRY_RUN: RemediatorMetric.STEPS_REHEARSED,
    StepResult.BLOCKED: RemediatorMetric.STEPS_BLOCKED,
    StepResult.FAILED: RemediatorMetric.STEPS_FAILED,
    StepResult.LIMIT_REACHED: RemediatorMetric.STEPS_LIMIT_REACHED,
    StepResult.UNCERTAIN: RemediatorMetric.STEPS_UNCERTAIN,
}
# Outcomes an operator must look at (the failed-outcomes alarm): a change refused, broken or of unknown fate.
NEEDS_ATTENTION = {OutcomeStatus.FAILED, OutcomeStatus.LIMIT_REACHED, OutcomeStatus.UNCERTAIN}


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_outcome(outcome: Outcome) -> None:
    """What one trigger came to, as counters (flushed as EMF with the invocation) and, per stream, the open
    shards the dashboard divides the write load by (flushed at once: it carries its own StreamName)."""
    count(RemediatorMetric.outcome(outcome.status.value))
    count(RemediatorMetric.OUTCOMES_NEEDING_ATTENTION, 1 if outcome.status in NEEDS_ATTENTION else 0)
    # Every counter is published, zero included, so a dashboard line and an alarm see 0 rather than no data.
    count(RemediatorMetric.PLANS_MADE, 0 if outcome.plan is None else 1)
    for result, name in STEP_METRICS.items():
        count(name, sum(1 for step in outcome.steps if step.outcome == result))
    count(RemediatorMetric.ADVICE_SENT, 1 if outcome.advice_sent else 0)
    if outcome.open_shards is not None:
        publish_open_shards(outcome.stream, outcome.open_shards)


def publish_open_shards(stream: str, open_shards: int) -> None:
    """A stream's open shards (OpenShards, dimensions service and StreamName), flushed at once as its own EMF
    line: each stream has its own dimension value. The census publishes one per protected stream every few
    minutes (the under-utilised alarm divides by it); an outcome publishes the count it saw or set."""
    with single_metric(
        name=RemediatorMetric.OPEN_SHARDS,
        unit=MetricUnit.Count,
        value=open_shards,
        namespace=METRICS_NAMESPACE,
        default_dimensions={RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME},
    ) as metric:
        metric.add_dimension(name=RemediatorMetric.STREAM_DIMENSION, value=stream)
