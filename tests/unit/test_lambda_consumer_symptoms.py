"""lambda-consumer-lag and lambda-consumer-errors: their alarms, what they gather, and each diagnosis from evidence."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.consumers import LAMBDA_MAPPINGS, MappingFacts
from remediator.core.evidence import Evidence
from remediator.core.metrics import MissingData
from remediator.core.ports import DeclaredOnly
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.lambda_consumer_errors import ROLE_PERMISSIONS, RoleCheck

from tests.fakes import NOW, evidence, policy, stream_arn

LAG = REGISTRY.symptoms["lambda-consumer-lag"]
ERRORS = REGISTRY.symptoms["lambda-consumer-errors"]
FUNCTION = "orders-processor"
OTHER = "orders-audit"
ROLE = "arn:aws:iam::123456789012:role/service-role/orders-processor-role"
EFO_ARN = f"{stream_arn('orders')}/consumer/fast:1700000000"


def consumers_policy(*functions: str, **overrides: Any) -> Any:
    return policy(consumers=[{"function": f} for f in functions or (FUNCTION,)], **overrides)


def mapping(function: str = FUNCTION, **fields: Any) -> MappingFacts:
    values: dict[str, Any] = {
        "function": function,
        "uuid": f"uuid-of-{function}",
        "state": "Enabled",
        "source_arn": stream_arn("orders"),
        "batch_size": 100,
        "parallelization_factor": 1,
        "maximum_retry_attempts": -1,
        "bisect_batch_on_error": False,
        "function_timeout_seconds": 60,
        "function_role_arn": ROLE,
    }
    return MappingFacts(**(values | fields))


def with_facts(
    base: Evidence, mappings: list[MappingFacts], checks: list[RoleCheck] = (), **series: tuple[float, ...]
) -> Evidence:
    facts = {
        LAMBDA_MAPPINGS: [m.model_dump(mode="json") for m in mappings],
        ROLE_PERMISSIONS: [c.model_dump(mode="json") for c in checks],
    }
    return base.model_copy(update={"facts": facts, "series": base.series | series})


# --- lambda-consumer-lag ----------------------------------------------------------------------------------------


def test_lag_alarms_once_per_consumer_function_and_keeps_its_state_without_data():
    # Given two Lambda consumers and an EFO one
    p = policy(consumers=[{"function": FUNCTION}, {"function": OTHER}, {"efo": "fast"}])
    # When the lag symptom declares its alarms
    specs = LAG.alarms(p, LAG.detector(p))
    # Then each function gets one, on its own IteratorAge, named by the function
    assert [(s.qualifier, s.metric.namespace, s.metric.name, s.metric.statistic) for s in specs] == [
        (FUNCTION, "AWS/Lambda", "IteratorAge", "Maximum"),
        (OTHER, "AWS/Lambda", "IteratorAge", "Maximum"),
    ]
    assert [s.metric.dimension_map for s in specs] == [{"FunctionName": FUNCTION}, {"FunctionName": OTHER}]
    # And a minute without a finished batch neither raises nor clears it
    assert {s.missing_data for s in specs} == {MissingData.IGNORE}
    assert {s.threshold for s in specs} == {60_000}


IDLE = {"bytes_per_second": 100_000, "records_per_second": 100}  # 5 % of 2 shards
SATURATED = {"bytes_per_second": 1_900_000, "records_per_second": 500}  # 95 % of 2 shards
AGE = 600_000.0  # 10 minutes, above the default 60 s threshold
HOUR_MS = 3_600_000


def lag_evidence(
    traffic: dict[str, float],
    ages: dict[int, float | None],
    mappings: list[MappingFacts],
    **base: Any,
) -> Evidence:
    series = {f"lambda_iterator_age_{i}": (age,) * 15 for i, age in ages.items() if age is not None}
    return with_facts(evidence(**traffic, **base), mappings, **series)


@pytest.mark.parametrize(
    ("traffic", "ages", "mappings", "base", "cause", "proposals"),
    [
        pytest.param(
            IDLE,
            {0: AGE},
            [mapping()],
            {},
            "slow-consumer",
            [("tune-event-source", {"function": FUNCTION, "goal": "throughput"})],
            id="lag-on-idle-shards-tunes-the-mapping-not-a-reshard",
        ),
        pytest.param(
            SATURATED,
            {0: AGE},
            [mapping()],
            {},
            "shards-saturated",
            [("reshard", {"desired_shards": 4})],
            id="lag-on-saturated-shards-reshards",
        ),
        pytest.param(
            IDLE,
            {0: AGE},
            [mapping()],
            {"mode": "ON_DEMAND"},
            "slow-consumer",
            [("tune-event-source", {"function": FUNCTION, "goal": "throughput"})],
            id="on-demand-stream-tunes",
        ),
        pytest.param(
            IDLE,
            {0: AGE},
            [mapping(state="Updating")],
            {},
            "slow-consumer",
            [("tune-event-source", {"function": FUNCTION, "goal": "throughput"})],
            id="updating-mapping-is-proposed-and-the-action-waits",
        ),
        pytest.param(IDLE, {0: AGE}, [mapping(state="Disabled")], {}, "mapping-disabled", [], id="disabled-mapping"),
        pytest.param(
            IDLE, {0: AGE}, [MappingFacts(function=FUNCTION)], {}, "mapping-missing", [], id="no-mapping-on-the-stream"
        ),
        pytest.param(IDLE, {0: 30_000.0}, [mapping()], {}, "not-reproduced", [], id="below-the-threshold"),
        pytest.param(IDLE, {0: None}, [mapping()], {}, "insufficient-evidence", [], id="no-iterator-age"),
        pytest.param({}, {0: AGE}, [mapping()], {}, "insufficient-evidence", [], id="no-write-data-to-judge-shards"),
    ],
)
def test_lag_diagnosis_decides_between_remedies_from_evidence(traffic, ages, mappings, base, cause, proposals):
    # Given the stream's write load, each function's IteratorAge and its mapping's facts
    p = consumers_policy(actions={"reshard": {"max_shards": 16}})
    ev = lag_evidence(traffic, ages, mappings, **base)
    if not traffic:
        ev = ev.model_copy(update={"series": {k: v for k, v in ev.series.items() if not k.startswith("incoming")}})
    # When the lag is diagnosed
    diagnosis = LAG.diagnose(ev, p)
    # Then the cause and the proposals follow from the evidence
    assert diagnosis.cause == cause
    assert [(x.action, x.parameters) for x in diagnosis.proposals] == proposals


def test_lag_names_a_disabled_mapping_and_how_to_enable_it():
    diagnosis = LAG.diagnose(lag_evidence(IDLE, {0: AGE}, [mapping(state="Disabled")]), consumers_policy())
    assert f"mapping uuid-of-{FUNCTION} of {FUNCTION} is Disabled" in diagnosis.summary
    (advice,) = diagnosis.advice
    assert advice.cli_command == f"aws lambda update-event-source-mapping --uuid uuid-of-{FUNCTION} --enabled"


def test_lag_proposes_for_each_lagging_function_only_worst_first():
    # Given three consumers: one far behind, one a little behind, one caught up
    p = consumers_policy(FUNCTION, OTHER, "orders-archive")
    ev = lag_evidence(IDLE, {0: 120_000.0, 1: AGE, 2: 1_000.0}, [mapping(), mapping(OTHER), mapping("orders-archive")])
    # Then the two lagging ones are tuned, the worst first, and the one caught up is left alone
    assert [x.parameters["function"] for x in LAG.diagnose(ev, p).proposals] == [OTHER, FUNCTION]


def test_lag_near_the_retention_proposes_raise_retention_ahead_of_the_tuning():
    # Given a function 13 h behind on a 24 h stream (over half the retention)
    ev = lag_evidence(IDLE, {0: 13 * HOUR_MS}, [mapping()])
    diagnosis = LAG.diagnose(ev, consumers_policy())
    # Then the diagnosis proposes raise-retention first, with the age, and still tunes the mapping; no advice
    assert [(x.action, x.parameters) for x in diagnosis.proposals] == [
        ("raise-retention", {"oldest_record_age_ms": 13 * HOUR_MS}),
        ("tune-event-source", {"function": FUNCTION, "goal": "throughput"}),
    ]
    assert diagnosis.proposals[0].reason == (
        "the oldest unread record is 54% of the way to expiry (retention 24 h; "
        f"detectors.lambda_consumer_lag.retention_share is 50%); furthest behind: {FUNCTION}"
    )
    assert diagnosis.advice == ()


def retention(hours: float) -> tuple[str, dict[str, Any]]:
    return ("raise-retention", {"oldest_record_age_ms": int(hours * HOUR_MS)})


def tune(function: str) -> tuple[str, dict[str, Any]]:
    return ("tune-event-source", {"function": function, "goal": "throughput"})


@pytest.mark.parametrize(
    ("hours", "traffic", "mappings", "proposals", "advice"),
    [
        pytest.param(
            {0: 11.9, 1: 0.5},
            IDLE,
            [mapping(), mapping(OTHER)],
            [tune(FUNCTION), tune(OTHER)],
            [],
            id="49.6 % of 24 h: the tunings only",
        ),
        pytest.param(
            {0: 12, 1: 0.5},
            IDLE,
            [mapping(), mapping(OTHER)],
            [retention(12), tune(FUNCTION), tune(OTHER)],
            [],
            id="50 % of 24 h: raise-retention ahead of the tunings",
        ),
        pytest.param(
            {0: 0.5, 1: 18},
            SATURATED,
            [mapping(), mapping(OTHER)],
            [retention(18), ("reshard", {"desired_shards": 4})],
            [],
            id="75 % on saturated shards: raise-retention ahead of the reshard",
        ),
        pytest.param(
            {0: 11.9, 1: 0.5},
            SATURATED,
            [mapping(), mapping(OTHER)],
            [("reshard", {"desired_shards": 4})],
            [],
            id="49.6 % on saturated shards: the reshard only",
        ),
        pytest.param(
            {0: 12, 1: None},
            IDLE,
            [mapping(state="Disabled"), mapping(OTHER)],
            [retention(12)],
            [f"Mapping of {FUNCTION} is Disabled"],
            id="50 % with the mapping disabled: raise-retention, and the advice to enable it",
        ),
        pytest.param(
            {0: 11.9, 1: None},
            IDLE,
            [mapping(state="Disabled"), mapping(OTHER)],
            [],
            [f"Mapping of {FUNCTION} is Disabled"],
            id="49.6 % with the mapping disabled: the advice only",
        ),
    ],
)
def test_lag_at_the_retention_share_raises_retention_as_well_as_the_fix(hours, traffic, mappings, proposals, advice):
    # Given two consumer functions this many hours behind on a 24 h stream, its write load and the mappings' facts
    ages = {index: None if h is None else h * HOUR_MS for index, h in hours.items()}
    ev = lag_evidence(traffic, ages, mappings)
    # When the lag is diagnosed
    diagnosis = LAG.diagnose(ev, consumers_policy(FUNCTION, OTHER, actions={"reshard": {"max_shards": 16}}))
    # Then from half the retention raise-retention comes first, with the worst function's age, ahead of the fix for
    # the lag (tune, reshard or the advice on the mapping); below it, the fix alone
    assert [(x.action, x.parameters) for x in diagnosis.proposals] == proposals
    assert [a.title for a in diagnosis.advice] == advice


def test_lag_retention_share_comes_from_its_own_detector():
    # Given a detector that proposes raise-retention from a quarter of the retention, and a function 7 h behind
    p = consumers_policy(detectors={"lambda_consumer_lag": {"retention_share": 0.25}})
    ev = lag_evidence(IDLE, {0: 7 * HOUR_MS}, [mapping()])
    # When diagnosed (7 h is 29 % of 24 h)
    proposals = LAG.diagnose(ev, p).proposals
    # Then raise-retention is proposed, naming the detector's setting; the default detector waits for 50 %
    assert [x.action for x in proposals] == ["raise-retention", "tune-event-source"]
    assert "detectors.lambda_consumer_lag.retention_share is 25%" in proposals[0].reason
    assert [x.action for x in LAG.diagnose(ev, consumers_policy()).proposals] == ["tune-event-source"]


def test_lag_retention_share_is_the_one_iterator_age_has():
    # The field is shared (symptoms.lag.retention_share_field): same default, bounds and description
    ours = LAG.detector_schema.model_fields["retention_share"]
    theirs = REGISTRY.symptoms["iterator-age"].detector_schema.model_fields["retention_share"]
    assert (ours.default, ours.metadata, ours.description) == (theirs.default, theirs.metadata, theirs.description)


# --- lambda-consumer-errors: alarms and gather ------------------------------------------------------------------


def test_errors_alarm_on_errors_and_throttles_of_each_function():
    p = consumers_policy(FUNCTION, OTHER)
    specs = ERRORS.alarms(p, ERRORS.detector(p))
    assert [(s.qualifier, s.metric.name, s.metric.statistic, s.metric.dimension_map) for s in specs] == [
        (f"{FUNCTION}.errors", "Errors", "Sum", {"FunctionName": FUNCTION}),
        (f"{FUNCTION}.throttles", "Throttles", "Sum", {"FunctionName": FUNCTION}),
        (f"{OTHER}.errors", "Errors", "Sum", {"FunctionName": OTHER}),
        (f"{OTHER}.throttles", "Throttles", "Sum", {"FunctionName": OTHER}),
    ]
    # No datapoint: nothing was invoked or throttled in that minute
    assert {s.missing_data for s in specs} == {MissingData.NOT_BREACHING}


class FakeAws:
    """ReadPorts answering Lambda's reads and IAM's simulation as AWS documents them; records every call."""

    def __init__(self, mapping_response: dict[str, Any], decisions: dict[str, str], fail_simulation: bool = False):
        self.mapping_response = mapping_response
        self.decisions = decisions
        self.fail_simulation = fail_simulation
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def service(self, name: str) -> Any:
        fake = self

        class Port:
            def call(self, operation: str, **params: Any) -> dict[str, Any]:
                fake.calls.append((name, operation, params))
                return fake.answer(operation, params)

        return Port()

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "ListEventSourceMappings":
            return {"EventSourceMappings": [self.mapping_response]}
        if operation == "GetFunctionConfiguration":
            return {"FunctionName": FUNCTION, "Timeout": 60, "Role": ROLE}
        if operation == "GetFunctionConcurrency":
            return {}
        if operation == "SimulatePrincipalPolicy":
            if self.fail_simulation:
                raise RuntimeError("AccessDenied: not authorized to perform iam:SimulatePrincipalPolicy")
            # One result per action, split over two pages to show the remediator reads them all.
            results = [
                {
                    "EvalActionName": action,
                    "EvalResourceName": params["ResourceArns"][0],
                    "EvalDecision": self.decisions.get(action, "allowed"),
                }
                for action in params["ActionNames"]
            ]
            if "Marker" not in params and len(results) > 1:
                return {"EvaluationResults": results[:1], "IsTruncated": True, "Marker": "page-2"}
            return {"EvaluationResults": results[1:] if "Marker" in params else results, "IsTruncated": False}
        raise AssertionError(f"unexpected call {operation}")


def gather(fake: FakeAws) -> dict[str, Any]:
    p = consumers_policy()
    state = evidence().stream
    return ERRORS.gather(p, state, DeclaredOnly(fake, ERRORS.read_iam_actions, ERRORS.id, read_only=True), NOW)


def esm(**fields: Any) -> dict[str, Any]:
    return {"UUID": "u-1", "State": "Enabled", "EventSourceArn": stream_arn("orders"), "BatchSize": 100} | fields


def test_gather_simulates_the_roles_kinesis_reads_on_the_stream_through_its_declared_grants():
    # Given a polling mapping whose role is denied GetRecords
    fake = FakeAws(esm(), {"kinesis:GetRecords": "implicitDeny"})
    # When the errors symptom gathers its facts (through a read-only view of exactly its grants)
    facts = gather(fake)
    # Then it simulated the five stream reads for the role, on the stream, reading every page
    simulations = [params for _, operation, params in fake.calls if operation == "SimulatePrincipalPolicy"]
    assert simulations[0] == {
        "PolicySourceArn": ROLE,
        "ActionNames": [
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:ListShards",
        ],
        "ResourceArns": [stream_arn("orders")],
    }
    assert simulations[1]["Marker"] == "page-2"
    # And the denied action is kept as a fact
    (check,) = [RoleCheck.model_validate(c) for c in facts[ROLE_PERMISSIONS]]
    assert (check.function, check.resource, check.denied) == (FUNCTION, stream_arn("orders"), ("kinesis:GetRecords",))


def test_gather_also_simulates_subscribe_to_shard_on_the_efo_consumer():
    fake = FakeAws(esm(EventSourceArn=EFO_ARN), {"kinesis:SubscribeToShard": "explicitDeny"})
    checks = [RoleCheck.model_validate(c) for c in gather(fake)[ROLE_PERMISSIONS]]
    assert [(c.resource, c.denied) for c in checks] == [
        (stream_arn("orders"), ()),
        (EFO_ARN, ("kinesis:SubscribeToShard",)),
    ]


def test_a_simulation_that_fails_is_a_fact_not_a_failed_plan():
    checks = [RoleCheck.model_validate(c) for c in gather(FakeAws(esm(), {}, fail_simulation=True))[ROLE_PERMISSIONS]]
    assert checks[0].error is not None and "AccessDenied" in checks[0].error


# --- lambda-consumer-errors: the diagnosis ----------------------------------------------------------------------


def errors_evidence(
    *,
    errors: tuple[float, ...] = (0,) * 15,
    throttles: tuple[float, ...] = (0,) * 15,
    duration_ms: float = 2_000,
    mappings: list[MappingFacts] | None = None,
    checks: list[RoleCheck] = (),
    shards: int = 2,
) -> Evidence:
    return with_facts(
        evidence(shards=shards, bytes_per_second=100_000, records_per_second=100),
        [mapping()] if mappings is None else mappings,
        list(checks),
        lambda_errors_0=errors,
        lambda_throttles_0=throttles,
        lambda_invocations_0=(10.0,) * 15,
        lambda_duration_0=(duration_ms,) * 15,
    )


FAILING = (0.0,) * 10 + (3.0,) * 5  # errors in the last 5 minutes: the batch keeps failing
ONCE = (0.0,) * 14 + (1.0,)
DENIED = RoleCheck(
    function=FUNCTION,
    role=ROLE,
    resource=stream_arn("orders"),
    denied=("kinesis:GetRecords", "kinesis:GetShardIterator"),
)
FAILURE_HANDLING = [("tune-event-source", {"function": FUNCTION, "goal": "failure-handling"})]


@pytest.mark.parametrize(
    ("ev", "cause", "named", "not_named", "proposals"),
    [
        pytest.param(
            errors_evidence(errors=FAILING, duration_ms=59_800),
            "function-timeout",
            "orders-processor ran for up to 59.8 s of its 60 s timeout",
            ("throttled", "denied", "own code"),
            FAILURE_HANDLING,
            id="timeout",
        ),
        pytest.param(
            errors_evidence(throttles=FAILING, mappings=[mapping(reserved_concurrency=2)], shards=4),
            "reserved-concurrency",
            "its reserved concurrency is 2, below the 4 shards x 1 = 4 batches its mapping runs at once",
            ("batches time out", "denied"),
            [],
            id="throttled-by-its-reserved-concurrency",
        ),
        pytest.param(
            errors_evidence(throttles=FAILING, mappings=[mapping(reserved_concurrency=2)]),
            "reserved-concurrency",
            "although its reserved concurrency (2) covers the 2 batches",
            ("batches time out", "denied"),
            [],
            id="throttled-although-reserved-concurrency-covers-the-mapping",
        ),
        pytest.param(
            errors_evidence(throttles=FAILING),
            "account-concurrency",
            "with no reserved concurrency: the account's unreserved concurrency ran out",
            ("batches time out", "denied"),
            [],
            id="throttled-by-the-account",
        ),
        pytest.param(
            errors_evidence(errors=ONCE, checks=[DENIED]),
            "consumer-role-denied",
            "execution role orders-processor-role is denied kinesis:GetRecords, kinesis:GetShardIterator on "
            "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
            ("batches time out", "throttled"),
            [],
            id="role-denied",
        ),
        pytest.param(
            errors_evidence(errors=ONCE, mappings=[mapping(last_processing_result="PROBLEM: Function call failed")]),
            "mapping-problem",
            "reports its last processing result as 'PROBLEM: Function call failed'",
            ("batches time out", "throttled", "denied"),
            FAILURE_HANDLING,
            id="last-processing-result",
        ),
        pytest.param(
            errors_evidence(errors=FAILING, mappings=[mapping(state="Disabled")]),
            "mapping-disabled",
            "Mapping uuid-of-orders-processor of orders-processor is Disabled",
            ("batches time out", "throttled", "own code"),
            [],
            id="disabled-mapping",
        ),
        pytest.param(
            errors_evidence(errors=FAILING),
            "function-errors",
            "orders-processor failed 15 times in 5 of the last 15 minutes",
            ("batches time out", "throttled", "denied"),
            FAILURE_HANDLING,
            id="function-code-keeps-failing",
        ),
        pytest.param(
            errors_evidence(errors=ONCE),
            "function-errors",
            "orders-processor failed 1 times in 1 of the last 15 minutes",
            (),
            [],
            id="one-failure-does-not-ask-for-failure-handling",
        ),
        pytest.param(
            errors_evidence(errors=FAILING, mappings=[mapping(bisect_batch_on_error=True, maximum_retry_attempts=2)]),
            "function-errors",
            "its own code raises",
            (),
            [],
            id="failure-handling-already-in-place",
        ),
        pytest.param(
            errors_evidence(errors=FAILING, mappings=[MappingFacts(function=FUNCTION)]),
            "mapping-missing",
            "orders-processor has no event-source mapping on stream orders",
            ("batches time out", "throttled"),
            [],
            id="no-mapping",
        ),
        pytest.param(errors_evidence(), "not-reproduced", "No consumer function reported", (), [], id="no-failures"),
    ],
)
def test_lambda_consumer_errors_name_the_cause_from_evidence(ev, cause, named, not_named, proposals):
    # The example: Lambda consumer errors -> the cause named from the mapping's state and last processing
    # result, the function's timeout, concurrency and throttles, and the role's permissions; not a generic list.
    # Given a function's errors and throttles, its mapping's facts and its role's simulated permissions
    # When the errors are diagnosed
    diagnosis = ERRORS.diagnose(ev, consumers_policy())
    # Then the cause is the one the evidence shows, named in the summary, and no other is claimed
    assert diagnosis.cause == cause
    assert named in diagnosis.summary
    for other in not_named:
        assert other not in diagnosis.summary, other
    # And failure handling is proposed only for a batch that keeps failing in the function
    assert [(x.action, x.parameters) for x in diagnosis.proposals] == proposals


def test_a_denied_role_is_named_with_the_fix():
    diagnosis = ERRORS.diagnose(errors_evidence(errors=ONCE, checks=[DENIED]), consumers_policy())
    (fix,) = [a for a in diagnosis.advice if a.title.startswith("Let ")]
    assert fix.cli_command == (
        "aws iam attach-role-policy --role-name orders-processor-role --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole"
    )


def test_a_timeout_is_fixed_by_a_longer_timeout_or_smaller_batches():
    diagnosis = ERRORS.diagnose(errors_evidence(errors=FAILING, duration_ms=59_800), consumers_policy())
    commands = [a.cli_command for a in diagnosis.advice]
    assert "aws lambda update-function-configuration --function-name orders-processor --timeout 120" in commands
    # And failure handling comes with the steps to take by hand (the policy may not allow it)
    assert any(c and "--bisect-batch-on-function-error" in c for c in commands)


def test_a_role_that_could_not_be_simulated_is_left_to_a_person():
    check = RoleCheck(function=FUNCTION, role=ROLE, resource=stream_arn("orders"), error="ClientError: AccessDenied")
    diagnosis = ERRORS.diagnose(errors_evidence(errors=FAILING, checks=[check]), consumers_policy())
    assert diagnosis.cause == "function-errors"
    assert any("could not simulate role" in a.detail for a in diagnosis.advice)


def test_several_causes_are_each_named_and_the_first_in_precedence_names_the_diagnosis():
    # Given a function that times out and is throttled by its reserved concurrency
    ev = errors_evidence(
        errors=FAILING, throttles=FAILING, duration_ms=60_000, mappings=[mapping(reserved_concurrency=1)]
    )
    diagnosis = ERRORS.diagnose(ev, consumers_policy())
    # Then both are named, and the timeout (the batches themselves fail) names the diagnosis
    assert diagnosis.cause == "function-timeout"
    assert "timeout" in diagnosis.summary and "reserved concurrency is 1" in diagnosis.summary


def test_errors_without_any_data_are_insufficient_evidence():
    ev = with_facts(evidence(), [mapping()])
    assert ERRORS.diagnose(ev, consumers_policy()).cause == "insufficient-evidence"


class AwsError(Exception):
    """What botocore raises for an AWS error: a ClientError whose `response` carries the error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"An error occurred ({code}): {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class MissingFunction(FakeAws):
    """Lambda answers that one function does not exist, or fails for another reason."""

    def __init__(self, missing: str, code: str = "ResourceNotFoundException") -> None:
        super().__init__(esm(), {})
        self.missing, self.code = missing, code

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("FunctionName") == self.missing and operation == "GetFunctionConfiguration":
            raise AwsError(self.code, f"Function not found: {function_arn_of(self.missing)}")
        return super().answer(operation, params)


def function_arn_of(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def test_a_consumer_function_that_does_not_exist_does_not_keep_the_others_from_being_read():
    # Given a policy naming a function that does not exist (a typo), next to a real one
    p = consumers_policy("orders-procesor", FUNCTION)
    aws = MissingFunction("orders-procesor")
    # When the mapping facts are gathered
    facts = LAG.gather(p, evidence().stream, DeclaredOnly(aws, LAG.read_iam_actions, LAG.id, read_only=True), NOW)
    # Then the missing one has no mapping and says why, and the real one is read in full
    typo, real = [MappingFacts.model_validate(m) for m in facts[LAMBDA_MAPPINGS]]
    assert (typo.found, typo.read_error) == (
        False,
        f"ResourceNotFoundException: Function not found: {function_arn_of('orders-procesor')}",
    )
    assert (real.found, real.function_role_arn) == (True, ROLE)
    # And a lag diagnosis names it, whether its IteratorAge is reported (a deleted function's) or not (a typo)
    for ages in ({0: AGE, 1: AGE}, {1: AGE}):
        diagnosis = LAG.diagnose(lag_evidence(IDLE, ages, [typo, real]), p)
        assert [x.parameters["function"] for x in diagnosis.proposals] == [FUNCTION]
        named = [a.detail for a in diagnosis.advice if "orders-procesor could not be read" in a.detail]
        assert len(named) == 1, diagnosis.advice
    # And so does an errors diagnosis of the real function
    ev = errors_evidence(errors=FAILING, mappings=[real, typo])  # the first consumer's metrics: the real one's
    diagnosis = ERRORS.diagnose(ev, consumers_policy(FUNCTION, "orders-procesor"))
    assert diagnosis.cause == "function-errors"
    assert any("orders-procesor could not be read" in a.detail for a in diagnosis.advice)


def test_any_other_error_reading_a_consumer_is_a_fact_not_a_guess():
    # Given a read that says nothing about the function's existence (access denied)
    aws = MissingFunction(FUNCTION, code="AccessDeniedException")
    # When the mapping facts are gathered
    facts = LAG.gather(
        consumers_policy(), evidence().stream, DeclaredOnly(aws, LAG.read_iam_actions, LAG.id, read_only=True), NOW
    )
    # Then no mapping is guessed (neither found nor missing): the failure is kept for the diagnosis to name
    assert LAMBDA_MAPPINGS not in facts
    error = f"AccessDeniedException: Function not found: {function_arn_of(FUNCTION)}"
    assert facts == {f"{LAMBDA_MAPPINGS}_error": error}
