"""The remediator measured: each figure printed beside its goal, with why the goal is what it is.

- cold import of the handler module (`remediator.handler`) in a fresh interpreter, several runs, the median;
- warm handler latency per alarm event against the emulator (moto's ThreadedMotoServer, demo/emulator.py): the
  real handler invoked with distinct alarm state changes; median and p95;
- AWS API calls per remediation, by service, counted with botocore's event system (a `before-call` handler on the
  session every product client is built from): a dry-run plan, and an enforced reshard;
- `cdk synth` for 10, 100, 500 and 1,000 streams: app.py run as the CDK CLI runs it (cdk.json's context in
  CDK_CONTEXT_JSON, a temporary CDK_OUTDIR), the time, the stacks and the largest template's resources (nested
  stack templates counted too).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
Progress = Callable[[str], None]

# --- goals, and why ---------------------------------------------------------------------------------------------

IMPORT_GOAL_S = 1.0
IMPORT_WHY = (
    "the import is part of every cold start's INIT phase (AWS caps INIT at 10 s); a Lambda at 256 MB gets a "
    "fraction of this machine's CPU, so 1 s here leaves the alarm's first reaction within seconds there"
)
LATENCY_GOAL_MEDIAN_S = 1.0
LATENCY_GOAL_P95_S = 2.0
LATENCY_WHY = (
    "an alarm waits for at least one minute of datapoints; a reaction within 1-2 s adds nothing to that, and "
    "the function's timeout (core/deployment.py) is far above it. Against the emulator, AWS's network time is absent"
)
CALLS_GOAL_DRY_RUN_MUTATING = 0
CALLS_GOAL_TOTAL = 30
CALLS_WHY = (
    "dry-run makes zero mutating calls (the project's rule); an enforced reshard exactly one UpdateShardCount. "
    "At most 30 calls per remediation keeps a burst of 100 alarms within the Kinesis describe limit "
    "(20/s per account) and CloudWatch's GetMetricData rate over a minute"
)
SYNTH_GOAL_S = 60.0
SYNTH_GOAL_RESOURCES = 450
SYNTH_WHY = (
    "CloudFormation allows 500 resources per template: 450 leaves room for growth; a minute keeps `make synth` "
    "and CI tolerable at 1,000 streams"
)
# Mutating operations: anything but reads (Describe*, List*, Get*) and the bookkeeping writes of the audit.
READ_PREFIXES = ("Describe", "List", "Get")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


# --- the environment the handler reads --------------------------------------------------------------------------

AUDIT_TABLE = "bench-audit"
IDEMPOTENCY_TABLE = "bench-idempotency"
KILL_SWITCH = "/kinesis-remediator/kill-switch"
POLICY_PREFIX = "/kinesis-remediator/policies"
ALARM_PREFIX = "kinesis-remediator-"
REGION = "us-east-1"


def handler_environment(topic_arn: str = "arn:aws:sns:us-east-1:123456789012:bench-notifications") -> dict[str, str]:
    """What the deployed function's environment holds (the names Settings reads), with fake credentials."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AUDIT_TABLE_NAME": AUDIT_TABLE,
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
        "NOTIFICATION_TOPIC_ARN": topic_arn,
        "KILL_SWITCH_PARAMETER": KILL_SWITCH,
        "POLICY_PARAMETER_PREFIX": POLICY_PREFIX,
        "ALARM_NAME_PREFIX": ALARM_PREFIX,
        # Follow-through on, as deployed (tests/integration/conftest.py's values).
        "FOLLOW_UP_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/remediator-follow-up-scheduler",
        "FOLLOW_UP_SCHEDULE_PREFIX": "kr-ft-bench-",
        # Powertools: no metrics namespace warning, no tracing outside Lambda.
        "POWERTOOLS_METRICS_NAMESPACE": "KinesisRemediator",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


# --- 1. cold import ----------------------------------------------------------------------------------------------

IMPORT_PROBE = "import time; t = time.perf_counter(); import remediator.handler; print(time.perf_counter() - t)"


@dataclass(frozen=True)
class ImportTime:
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def cold_import(runs: int = 7, progress: Progress = lambda _: None) -> ImportTime:
    """`import remediator.handler` in `runs` fresh interpreters; the seconds each took."""
    # No bytecode written (as the Makefile runs everything): the project's modules are compiled at each cold import,
    # as in Lambda, whose code directory is read-only. Installed packages use the caches pip wrote.
    environment = {
        **os.environ,
        **handler_environment(),
        "PYTHONPATH": f"{ROOT / 'lambdas'}{os.pathsep}{ROOT}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    times = []
    for run in range(runs):
        progress(f"cold import {run + 1}/{runs}")
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], env=environment, capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return ImportTime(times)


# --- 2 and 3. the handler against the emulator ------------------------------------------------------------------


class CallCounter:
    """AWS API calls by service and operation, seen by botocore's `before-call` event while recording."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.recording = False

    def __call__(self, model: Any, **_: Any) -> None:
        if self.recording:
            self.calls[(model.service_model.service_name, model.name)] += 1

    @contextlib.contextmanager
    def record(self) -> Iterator[Counter[tuple[str, str]]]:
        self.calls = Counter()
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False


def by_service(calls: Counter[tuple[str, str]]) -> dict[str, int]:
    services: Counter[str] = Counter()
    for (service, _), n in calls.items():
        services[service] += n
    return dict(sorted(services.items()))


def mutating(calls: Counter[tuple[str, str]], service: str) -> dict[str, int]:
    return {op: n for (svc, op), n in calls.items() if svc == service and not op.startswith(READ_PREFIXES)}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """File descriptor 1 to /dev/null: the handler's JSON logs and metrics go to the stdout its logger found when
    it was created (earlier, by the bench's own imports), which redirect_stdout cannot reach."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 1)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@dataclass
class HandlerFigures:
    latencies: list[float] = field(default_factory=list)
    dry_run_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    enforce_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    dry_run_status: str = ""
    enforce_status: str = ""
    shards_after_enforce: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95)


def _event_time(n: int) -> str:
    """A distinct alarm state timestamp per event (the idempotency key is the alarm name and this timestamp)."""
    return f"2026-11-26T{3 + n // 60:02d}:{n % 60:02d}:00.000+0000"


def _create_tables(dynamodb: Any) -> None:
    """The audit and idempotency tables, keyed as the stack creates them (tests/integration/conftest.py)."""
    dynamodb.create_table(
        TableName=AUDIT_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def handler_against_emulator(invocations: int = 30, progress: Progress = lambda _: None) -> HandlerFigures:
    """Latency of `invocations` warm dry-run remediations, then the calls of one dry-run plan and one enforced
    reshard. The handler runs in this process, its clients pointed at moto's server by AWS_ENDPOINT_URL."""
    import importlib

    import boto3

    from demo.emulator import Emulator

    # The integration tests' helpers, reused (AwsEnv: streams, policies, kill switch, metrics; the alarm event
    # builder; the saturated traffic and the policy builder). Imported at run time: the bench needs the repository's
    # tests/ folder, which `make bench` always has, and mypy does not type-check the suite through the bench.
    fakes = importlib.import_module("tests.fakes")
    conftest = importlib.import_module("tests.integration.conftest")
    support = importlib.import_module("tests.integration.support")
    alarm_event, AwsEnv, FakeContext = fakes.alarm_event, conftest.AwsEnv, conftest.FakeContext
    SATURATED, policy = support.SATURATED, support.policy

    figures = HandlerFigures()
    saved = dict(os.environ)
    with Emulator() as emulator:
        try:
            os.environ.update(emulator.environment())
            os.environ.pop("AWS_PROFILE", None)
            topic = boto3.client("sns", region_name=REGION).create_topic(Name="bench-notifications")["TopicArn"]
            os.environ.update(handler_environment(topic))
            os.environ.update(emulator.environment())
            _create_tables(boto3.client("dynamodb", region_name=REGION))
            aws = AwsEnv(
                topic_arn=topic,
                mailbox_url="",
                audit_table=AUDIT_TABLE,
                kill_switch=KILL_SWITCH,
                policy_prefix=POLICY_PREFIX,
            )
            aws.set_kill_switch("off")
            aws.create_stream("bench-dry-run", 2)
            aws.put_policy(policy("bench-dry-run"))
            aws.push_traffic("bench-dry-run", **SATURATED)
            aws.create_stream("bench-enforce", 2)
            aws.put_policy(policy("bench-enforce", mode="enforce"))
            aws.push_traffic("bench-enforce", **SATURATED)

            # Count on the session every product client comes from (remediator.clients.aws._session): clients copy
            # the session's event handlers when they are created, so register before the handler module builds any.
            from remediator.clients import aws as aws_clients

            counter = CallCounter()
            aws_clients._session().events.register("before-call", counter)
            with quiet_stdout():  # the handler's JSON logs and metrics
                import remediator.handler as handler

                context = FakeContext()
                name = f"{ALARM_PREFIX}bench-dry-run/write-throttling"
                handler.lambda_handler(alarm_event(name, stream="bench-dry-run", timestamp=_event_time(0)), context)
                for n in range(1, invocations + 1):
                    progress(f"warm invocation {n}/{invocations}")
                    event = alarm_event(name, stream="bench-dry-run", timestamp=_event_time(n))
                    started = time.perf_counter()
                    handler.lambda_handler(event, context)
                    figures.latencies.append(time.perf_counter() - started)
                progress("one dry-run plan, counting calls")
                event = alarm_event(name, stream="bench-dry-run", timestamp=_event_time(invocations + 1))
                with counter.record() as calls:
                    figures.dry_run_status = str(handler.lambda_handler(event, context).get("status"))
                figures.dry_run_calls = Counter(calls)
                progress("one enforced reshard, counting calls")
                name = f"{ALARM_PREFIX}bench-enforce/write-throttling"
                event = alarm_event(name, stream="bench-enforce", timestamp=_event_time(invocations + 2))
                with counter.record() as calls:
                    figures.enforce_status = str(handler.lambda_handler(event, context).get("status"))
                figures.enforce_calls = Counter(calls)
            figures.shards_after_enforce = aws.shard_count("bench-enforce")
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return figures


# --- 4. cdk synth at fleet scale ---------------------------------------------------------------------------------

# What the CDK CLI adds to cdk.json's context when it runs the app (as tests/infrastructure/support.py).
CLI_CONTEXT = {"aws:cdk:enable-asset-metadata": True, "aws:cdk:enable-path-metadata": True}


def fleet_policy(streams: int) -> str:
    """One policy file for `streams` streams, each with everything default but the required max_shards."""
    lines = ["version: 1", "streams:"]
    for n in range(streams):
        lines += [f"  - name: bench-stream-{n:04d}", "    actions:", "      reshard:", "        max_shards: 16"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SynthFigures:
    streams: int
    seconds: float
    stacks: int = 0
    nested: int = 0
    largest_stack: str = ""
    largest_resources: int = 0
    error: str | None = None

    @property
    def met(self) -> bool:
        return self.error is None and self.seconds < SYNTH_GOAL_S and self.largest_resources <= SYNTH_GOAL_RESOURCES


def count_resources(outdir: Path) -> tuple[int, int, str, int]:
    """(stacks in the manifest, nested stack templates, the largest template's name, its resource count)."""
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    nested = {p.name for p in outdir.glob("*.nested.template.json")}
    templates = {s["properties"]["templateFile"] for s in stacks} | nested
    largest, count = "", -1
    for name in sorted(templates):
        resources = len(json.loads((outdir / name).read_text(encoding="utf-8")).get("Resources", {}))
        if resources > count:
            largest, count = name, resources
    return len(stacks), len(nested), largest.removesuffix(".template.json"), max(count, 0)


def first_error_line(text: str) -> str:
    """The line that says what went wrong: the last exception line of a traceback, else the first line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no output)"
    errors = [line for line in lines if not line.startswith(("File ", "Traceback", "^", "~"))]
    for line in reversed(errors):
        if "Error" in line or "Exception" in line or "error" in line:
            return line[:300]
    return lines[0][:300]


def synth(streams: int, timeout: float = 900) -> SynthFigures:
    """app.py, run as `cdk synth` runs it, on a generated policy of `streams` streams, into a temporary outdir."""
    with tempfile.TemporaryDirectory(prefix=f"bench-synth-{streams}-") as work:
        policies = Path(work) / "policies"
        policies.mkdir()
        (policies / "fleet.yaml").write_text(fleet_policy(streams), encoding="utf-8")
        context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
        context = {**context, **CLI_CONTEXT, "policyDir": str(policies)}
        outdir = Path(work) / "cdk.out"
        environment = {
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(outdir),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "PYTHONPATH": f"{ROOT / 'lambdas'}{os.pathsep}{ROOT}",
        }
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return SynthFigures(streams, time.perf_counter() - started, error=f"no answer within {timeout:.0f} s")
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            return SynthFigures(streams, seconds, error=first_error_line(done.stderr or done.stdout))
        stacks, nested, largest, resources = count_resources(outdir)
        return SynthFigures(streams, seconds, stacks, nested, largest, resources)


# --- the report --------------------------------------------------------------------------------------------------


def report(
    out: TextIO,
    *,
    imports: ImportTime | None,
    handler: HandlerFigures | None,
    synths: Sequence[SynthFigures],
) -> None:
    from bench.report import render_table

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out.write(
        f"\n== The remediator itself (goals and why below each figure); {os.cpu_count()} cores, load average {load}: "
        "times grow with the load\n\n"
    )
    if imports is not None:
        runs = ", ".join(f"{t:.2f}" for t in imports.runs)
        out.write(
            f"Cold import of remediator.handler: median {imports.median:.2f} s (fastest {min(imports.runs):.2f} s) "
            f"over {len(imports.runs)} fresh interpreters ({runs} s); goal median < {IMPORT_GOAL_S:.1f} s: "
            f"{_verdict(imports.median < IMPORT_GOAL_S)}\n"
            f"  why this goal: {IMPORT_WHY}\n\n"
        )
    if handler is not None:
        met = handler.median < LATENCY_GOAL_MEDIAN_S and handler.p95 < LATENCY_GOAL_P95_S
        out.write(
            f"Warm handler latency per alarm event (dry-run write-throttling plan, {len(handler.latencies)} events, "
            f"moto server on 127.0.0.1): median {handler.median * 1000:.0f} ms, p95 {handler.p95 * 1000:.0f} ms; "
            f"goal median < {LATENCY_GOAL_MEDIAN_S * 1000:.0f} ms and p95 < {LATENCY_GOAL_P95_S * 1000:.0f} ms: "
            f"{_verdict(met)}\n  why this goal: {LATENCY_WHY}\n\n"
        )
        dry, enforce = by_service(handler.dry_run_calls), by_service(handler.enforce_calls)
        services = sorted(set(dry) | set(enforce))
        rows = [[s, str(dry.get(s, 0)), str(enforce.get(s, 0))] for s in services]
        rows.append(["total", str(sum(dry.values())), str(sum(enforce.values()))])
        out.write("AWS API calls per remediation, by service (botocore before-call events):\n")
        out.write(render_table(["service", "dry-run plan", "enforced reshard"], rows) + "\n")
        ops = lambda calls: ", ".join(f"{svc}:{op} x{n}" for (svc, op), n in sorted(calls.items()))  # noqa: E731
        out.write(f"  dry-run ({handler.dry_run_status}): {ops(handler.dry_run_calls)}\n")
        out.write(
            f"  enforce ({handler.enforce_status}, stream now {handler.shards_after_enforce} shards): "
            f"{ops(handler.enforce_calls)}\n"
        )
        dry_mutating = mutating(handler.dry_run_calls, "kinesis")
        enforce_mutating = mutating(handler.enforce_calls, "kinesis")
        met = (
            not dry_mutating
            and enforce_mutating == {"UpdateShardCount": 1}
            and max(sum(dry.values()), sum(enforce.values())) <= CALLS_GOAL_TOTAL
        )
        out.write(
            f"  goal: dry-run {CALLS_GOAL_DRY_RUN_MUTATING} mutating Kinesis calls (got {sum(dry_mutating.values())}), "
            f"enforced reshard exactly one UpdateShardCount (got {enforce_mutating or 'none'}), "
            f"<= {CALLS_GOAL_TOTAL} calls each: {_verdict(met)}\n  why this goal: {CALLS_WHY}\n\n"
        )
    if synths:
        rows = []
        for s in synths:
            if s.error:
                rows.append([f"{s.streams:,}", f"{s.seconds:.1f}", "-", "-", "NOT met: failed (below)"])
            else:
                largest = f"{s.largest_resources} ({s.largest_stack})"
                stacks = f"{s.stacks}" + (f" (+{s.nested} nested)" if s.nested else "")
                rows.append([f"{s.streams:,}", f"{s.seconds:.1f}", stacks, largest, _verdict(s.met)])
        out.write(
            f"cdk synth (app.py as the CDK CLI runs it, cdk-nag included); goals: < {SYNTH_GOAL_S:.0f} s, "
            f"<= {SYNTH_GOAL_RESOURCES} resources in every stack (nested stacks' templates counted too):\n"
        )
        out.write(render_table(["streams", "seconds", "stacks", "largest stack's resources", "goal"], rows) + "\n")
        for s in synths:
            if s.error:
                out.write(f"  {s.streams:,} streams failed after {s.seconds:.1f} s: {s.error}\n")
        out.write(f"  why this goal: {SYNTH_WHY}\n")
