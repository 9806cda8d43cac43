"""Fault injection (issue 8): at most one change per alarm state change, whatever fails around it.

Each row of CASES is one fault, at one call, before or after the mutating step, transient (once) or not
(always). A case delivers one alarm event the way Lambda does asynchronously: the handler runs, and when it
raises (or dies) Lambda runs it again with the same event, twice at most; the last exception is what the
dead-letter queue receives. Then it checks:

- changes: how many changes really reached the stream (counted where they are applied): never more than one;
- rows: the outcomes of the stream's audit rows, which must tell what happened to the stream;
- mails: the e-mails' subject tags; every failure ends in an e-mail or a dead-letter message.

How faults are made:
- the mutating call goes over HTTP to a loopback endpoint (FaultyAws) through the product's write client and
  botocore's real retry layer (its retry config is the product's WRITE_CONFIG; only its read timeout is cut to
  keep the suite fast). The endpoint answers as AWS does: it applies the change to moto and answers, or fails
  before or after applying it (500, a read timeout, a dropped connection), or refuses it (400
  LimitExceededException, ResourceInUseException). moto has no such faults of its own. It speaks AWS's JSON
  protocols (Kinesis, DynamoDB: X-Amz-Target) and Lambda's REST-JSON (tune-event-source: routed by method and
  path from botocore's model; UpdateEventSourceMapping answers 202; errors in x-amzn-ErrorType: 500
  ServiceException, 409 ResourceConflictException, 429 TooManyRequestsException). The step's own re-read before
  the change (GetEventSourceMapping) goes through it too, never faulted;
- the calls around it (policy, kill switch, describe, metrics, idempotency, audit, lease, e-mail) run against
  in-process moto, with errors injected into the client (AWS's error shapes: a 500, a throttle), or a `Crash`
  (a BaseException, as when Lambda times the function out or it runs out of memory: nothing of ours runs after
  it). After a crash, Lambda's retry finds Powertools' in-progress record expired (the dead invocation had no
  time left), so the harness removes it.

The README's guardrails section links this table; test_the_suite_states_its_case_count pins its size.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel
from remediator.clients.aws import WRITE_CONFIG
from remediator.clients.services import AwsServices

from tests.fakes import REGION, alarm_event
from tests.integration.efo_support import READ_ALARM, READ_METRIC, efo_policy, read_throttled
from tests.integration.support import AGE_ALARM, NEEDS_TEN, STREAM, WRITE_ALARM, policy
from tests.integration.test_lambda_consumers import lag_event, lagging_consumer, parallelization
from tests.integration.test_lease_table_capacity import APP, fire, set_up, throttled
from tests.integration.test_retention_and_stalls import ITERATOR_METRIC, lagging_stream

# --- the loopback AWS for mutating calls -----------------------------------------------------------------

MUTATIONS = {
    "UpdateShardCount",
    "IncreaseStreamRetentionPeriod",
    "UpdateTable",
    "RegisterStreamConsumer",
    "UpdateEventSourceMapping",
}
TARGETS = {"Kinesis_20131202": "kinesis", "DynamoDB_20120810": "dynamodb"}
# How the loopback fails a mutating call: before or after applying it to moto.
OK, ERROR_500_BEFORE, ERROR_500_AFTER = "ok", "500-before", "500-after"
TIMEOUT_BEFORE, TIMEOUT_AFTER, RESET_AFTER = "timeout-before", "timeout-after", "reset-after"
LIMIT, REFUSED = "limit-exceeded", "resource-in-use"
# Lambda's refusals of UpdateEventSourceMapping (its model has no LimitExceededException): 409 "another operation
# is in progress" on the mapping, and 429, its control-plane rate quota, which botocore counts as throttling
# and would retry (aws-facts.md §4).
CONFLICT, THROTTLED = "resource-conflict", "too-many-requests"
WRITE_READ_TIMEOUT = (
    2.0  # seconds: the test write client's, so a hung answer times out fast (yet a loaded machine answers)
)
JSON, REST_JSON = "json", "rest-json"
# AWS's answer to a failed or refused call, by protocol and mode: HTTP status, error code, message.
FAILURES: dict[str, dict[str, tuple[int, str, str]]] = {
    JSON: {
        ERROR_500_BEFORE: (500, "InternalFailure", "We encountered an internal error."),
        LIMIT: (400, "LimitExceededException", "Shard limit reached."),
        REFUSED: (400, "ResourceInUseException", "Stream is UPDATING."),
    },
    REST_JSON: {
        ERROR_500_BEFORE: (500, "ServiceException", "Lambda was unable to process the request."),
        CONFLICT: (409, "ResourceConflictException", "An update is already in progress for this mapping."),
        THROTTLED: (429, "TooManyRequestsException", "Rate exceeded"),
    },
}
FAILURES[JSON][ERROR_500_AFTER] = FAILURES[JSON][ERROR_500_BEFORE]
FAILURES[REST_JSON][ERROR_500_AFTER] = FAILURES[REST_JSON][ERROR_500_BEFORE]
REST_SERVICES = ("lambda",)  # REST-JSON services the loopback routes by method and path


@cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def rest_route(method: str, path: str) -> tuple[str, OperationModel, dict[str, Any]] | None:
    """The REST-JSON operation a request is for, from botocore's service models (method and requestUri), with
    the members its path carries (e.g. UUID in PUT /2015-03-31/event-source-mappings/{UUID})."""
    segments = [unquote(part) for part in urlsplit(path).path.strip("/").split("/")]
    for service in REST_SERVICES:
        model = service_model(service)
        matches = []
        for name in model.operation_names:
            operation = model.operation_model(name)
            template = operation.http["requestUri"].split("?")[0].strip("/").split("/")
            if operation.http["method"] != method or len(template) != len(segments):
                continue
            labels = {t.strip("{}+"): s for t, s in zip(template, segments, strict=True) if t.startswith("{")}
            if all(t == s for t, s in zip(template, segments, strict=True) if not t.startswith("{")):
                members = operation.input_shape.members if operation.input_shape else {}
                params = {
                    member: labels[shape.serialization["name"]]
                    for member, shape in members.items()
                    if shape.serialization.get("location") == "uri" and shape.serialization.get("name") in labels
                }
                matches.append((len(labels), service, operation, params))
        if matches:
            _, service, operation, params = min(matches, key=lambda match: match[0])  # literal segments first
            return service, operation, params
    return None


class FaultyAws(BaseHTTPRequestHandler):
    """AWS's JSON protocols (Kinesis, DynamoDB: POST with X-Amz-Target) and Lambda's REST-JSON (method and path),
    backed by in-process moto; fails mutating calls on demand, as each protocol answers failures."""

    mode: ClassVar[str] = OK
    requests: ClassVar[list[str]] = []
    applied: ClassVar[list[str]] = []
    hold: ClassVar[threading.Event | None] = None  # when set, a mutating call waits for it (a change in flight)

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        if not target:
            return self._rest("POST")
        prefix, _, operation = target.partition(".")
        return self._serve(JSON, TARGETS[prefix], operation, self._body(), 200)

    def do_GET(self) -> None:
        self._rest("GET")

    def do_PUT(self) -> None:
        self._rest("PUT")

    def _rest(self, method: str) -> None:
        route = rest_route(method, self.path)
        if route is None:
            return self._fail(REST_JSON, 404, "UnknownOperationException", f"no operation for {method} {self.path}")
        service, operation, labels = route
        status = int(operation.http.get("responseCode", 200))
        return self._serve(REST_JSON, service, operation.name, {**self._body(), **labels}, status)

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"))

    def _serve(self, protocol: str, service: str, operation: str, params: dict[str, Any], status: int) -> None:
        mutating = operation in MUTATIONS
        mode = FaultyAws.mode if mutating else OK
        if mutating:
            FaultyAws.requests.append(operation)
            if FaultyAws.hold is not None:
                FaultyAws.hold.wait(10)
        failure = FAILURES[protocol].get(mode)
        if failure is not None and mode != ERROR_500_AFTER:
            return self._fail(protocol, *failure)
        if mode == TIMEOUT_BEFORE:
            time.sleep(WRITE_READ_TIMEOUT + 1)
            return None
        client = boto3.client(service, region_name=REGION)
        try:
            response = getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            error = exc.response["Error"]
            code = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return self._fail(protocol, code, error["Code"], error.get("Message", ""))
        if mutating:
            FaultyAws.applied.append(operation)
        if mode == ERROR_500_AFTER:
            return self._fail(protocol, *FAILURES[protocol][mode])
        if mode == TIMEOUT_AFTER:
            time.sleep(WRITE_READ_TIMEOUT + 1)
            return None
        if mode == RESET_AFTER:
            self.close_connection = True
            self.connection.close()
            return None
        response.pop("ResponseMetadata", None)
        return self._answer(status, response, "application/x-amz-json-1.1" if protocol == JSON else "application/json")

    def _fail(self, protocol: str, status: int, code: str, message: str) -> None:
        if protocol == JSON:
            return self._answer(status, {"__type": code, "message": message}, "application/x-amz-json-1.1")
        # REST-JSON (Lambda): the code in x-amzn-ErrorType, a body with Type (User or Service) and the message
        # under the member name the error's shape uses (ServiceException: Message; others: message).
        model = service_model("lambda")
        members = model.shape_for(code).members if code in model.shape_names else {}
        key = "Message" if "Message" in members else "message"
        body: dict[str, Any] = {"Type": "Service" if status >= 500 else "User", key: message}
        headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.awslambda/"}
        if code == "TooManyRequestsException":
            body["Reason"] = "CallerRateLimitExceeded"
            headers["Retry-After"] = "1"
        return self._answer(status, body, "application/json", headers)

    def _answer(
        self, status: int, body: dict[str, Any], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up waiting (a timeout case)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback(handler: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The handler's write ports, through the product's write client, against FaultyAws."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultyAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FaultyAws.mode, FaultyAws.requests, FaultyAws.applied, FaultyAws.hold = OK, [], [], None
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config = WRITE_CONFIG.merge(Config(read_timeout=WRITE_READ_TIMEOUT))
    writes = AwsServices(
        lambda service: boto3.session.Session().client(service, region_name=REGION, endpoint_url=url, config=config)
    )
    deps = replace(handler.dependencies(), writes=writes)
    monkeypatch.setattr(handler, "dependencies", lambda: deps)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


# --- faults around the mutating call (in-process) ------------------------------------------------------------


class Crash(BaseException):
    """The function dies here (Lambda's timeout, out of memory): no handler of ours runs after it."""


@dataclass
class Injection:
    """Fail the matching calls: `times` of them (None: every one); `after`: let the call through, then fail
    (it took effect, the answer was lost)."""

    match: Callable[[str, str, dict[str, Any]], bool]
    error: BaseException
    times: int | None = 1
    after: bool = False
    fired: int = 0


def server_error(code: str = "InternalServerError", status: int = 500) -> Callable[[str], ClientError]:
    def make(operation: str) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )

    return make


def is_lease(params: dict[str, Any]) -> bool:
    return str(params.get("Item", params.get("Key", {})).get("pk", {}).get("S", "")).startswith("LEASE#")


def is_claim(params: dict[str, Any]) -> bool:
    return str(params.get("Item", {}).get("pk", {}).get("S", "")).startswith("INTENT#")


def audit_put(outcome: Callable[[str], bool]) -> Callable[[str, str, dict[str, Any]], bool]:
    def match(service: str, operation: str, params: dict[str, Any]) -> bool:
        item = params.get("Item", {})
        return (
            (service, operation, params.get("TableName")) == ("dynamodb", "PutItem", "audit")
            and str(item.get("pk", {}).get("S", "")).startswith("STREAM#")
            and outcome(item.get("outcome", {}).get("S", ""))
        )

    return match


def after_a_change(match: Callable[[str, str, dict[str, Any]], bool]) -> Callable[[str, str, dict[str, Any]], bool]:
    return lambda service, operation, params: bool(FaultyAws.applied) and match(service, operation, params)


# Where a fault is injected, by name (the CASES table's `call` column).
CALLS: dict[str, Callable[[str, str, dict[str, Any]], bool]] = {
    "policy": lambda s, o, p: (s, o) == ("ssm", "GetParameter") and "/policies/" in p.get("Name", ""),
    "kill-switch": lambda s, o, p: (s, o) == ("ssm", "GetParameter") and p.get("Name", "").endswith("kill-switch"),
    "describe": lambda s, o, p: (s, o) == ("kinesis", "DescribeStreamSummary"),
    "describe-after": after_a_change(lambda s, o, p: (s, o) == ("kinesis", "DescribeStreamSummary")),
    "metrics": lambda s, o, p: (s, o) == ("cloudwatch", "GetMetricData"),
    "idempotency-begin": lambda s, o, p: (s, o, p.get("TableName")) == ("dynamodb", "PutItem", "idempotency"),
    "idempotency-end": lambda s, o, p: (s, o, p.get("TableName")) == ("dynamodb", "UpdateItem", "idempotency"),
    "lease": lambda s, o, p: (s, o) == ("dynamodb", "PutItem") and is_lease(p) and not FaultyAws.applied,
    "lease-release": after_a_change(lambda s, o, p: (s, o) == ("dynamodb", "PutItem") and is_lease(p)),
    "audit-claim": lambda s, o, p: (s, o) == ("dynamodb", "PutItem") and is_claim(p),
    "audit-begin": audit_put(lambda outcome: outcome == "in-flight"),
    "audit-finish": after_a_change(audit_put(lambda outcome: outcome != "in-flight")),
    "notify": after_a_change(lambda s, o, p: (s, o) == ("sns", "Publish")),
}


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch, api_calls: Any) -> list[Injection]:
    """Wrap every client's API call (outside the `api_calls` spy) with the injections (a list the test fills
    and empties)."""
    injections: list[Injection] = []
    through = BaseClient._make_api_call

    def call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        due = [i for i in injections if (i.times is None or i.fired < i.times) and i.match(service, operation, params)]
        for injection in due:
            if not injection.after:
                injection.fired += 1
                raise injection.error
        response = through(self, operation, params)
        for injection in due:
            injection.fired += 1
            raise injection.error
        return response

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return injections


# --- Lambda's asynchronous delivery --------------------------------------------------------------------------


@dataclass
class Delivery:
    result: dict[str, Any] | None
    errors: list[BaseException] = field(default_factory=list)

    @property
    def dead_letter(self) -> BaseException | None:
        """What the dead-letter queue receives: the last failure, when every attempt failed."""
        return self.errors[-1] if self.result is None and self.errors else None


def deliver(aws: Any, invoke: Callable[[Any], dict[str, Any]], event: dict[str, Any]) -> Delivery:
    """The event, then Lambda's two retries while it raises (aws_lambda's async invocation: 2 by default)."""
    errors: list[BaseException] = []
    for _ in range(3):
        try:
            return Delivery(invoke(event), errors)
        except Crash as crash:
            errors.append(crash)
            expire_in_progress(aws)
        except Exception as exc:
            errors.append(exc)
    return Delivery(None, errors)


def expire_in_progress(aws: Any) -> None:
    table = aws.client("dynamodb")
    for item in table.scan(TableName="idempotency")["Items"]:
        table.delete_item(TableName="idempotency", Key={"id": item["id"]})


# --- the cases -----------------------------------------------------------------------------------------------

RESHARD, RETENTION, LEASE_TABLE, EFO = "reshard", "raise-retention", "lease-table-capacity", "enhanced-fan-out"
TUNE = "tune-event-source"


@dataclass(frozen=True)
class Case:
    id: str
    action: str
    # the fault: the mutating call's (FaultyAws mode), or one around it (CALLS), with how and how often
    mode: str = OK
    call: str | None = None
    crash: bool = False
    after: bool = False  # the injected call takes effect, then fails
    times: int | None = 1  # None: every time
    # what must come of it
    changes: int = 1
    rows: tuple[str, ...] = ("applied",)
    mails: tuple[str, ...] = ("APPLIED",)
    dead_letter: bool = False
    why: str = ""


ALWAYS = None
CASES = [
    # The mutating call itself, through botocore's retry layer (the loopback).
    Case("reshard-ok", RESHARD, why="the control: one change, audited applied, e-mailed"),
    Case("reshard-500-before", RESHARD, ERROR_500_BEFORE, changes=0, rows=("failed",), mails=("FAILED",),
         why="a 5xx that made no change: re-read (still 2 shards, ACTIVE), failed, not retried"),
    Case("reshard-500-after", RESHARD, ERROR_500_AFTER,
         why="a 5xx after AWS took it: re-read shows the target, audited applied (cooldown starts)"),
    Case("reshard-timeout-before", RESHARD, TIMEOUT_BEFORE, changes=0, rows=("failed",), mails=("FAILED",),
         why="no answer and no change: re-read settles it"),
    Case("reshard-timeout-after", RESHARD, TIMEOUT_AFTER, why="no answer, change made: re-read settles it"),
    Case("reshard-reset-after", RESHARD, RESET_AFTER, why="connection dropped after the change: re-read"),
    Case("reshard-limit", RESHARD, LIMIT, changes=0, rows=("limit-reached",), mails=("LIMIT-REACHED",),
         why="LimitExceededException: 'AWS limit reached', one request, e-mailed once, no retry"),
    Case("reshard-refused", RESHARD, REFUSED, changes=0, rows=("failed",), mails=("FAILED",),
         why="a 4xx refusal on the first change: no change, no re-read needed"),
    Case("reshard-500-after-unreadable", RESHARD, ERROR_500_AFTER, call="describe-after", times=ALWAYS,
         rows=("uncertain",), mails=("UNCERTAIN",),
         why="a 5xx and the re-read fails too: uncertain, counted as applied, e-mailed with what to check"),
    # Before the change: the invocation raises, Lambda retries, the retry makes the one change.
    Case("policy-throttled-once", RESHARD, call="policy", why="a throttled policy read raises; the retry acts"),
    Case("policy-failing", RESHARD, call="policy", times=ALWAYS, changes=0, rows=(), mails=(), dead_letter=True,
         why="never 'no policy' (nothing cached as ignored): the dead-letter queue gets it"),
    Case("kill-switch-once", RESHARD, call="kill-switch", why="an unreadable switch is never 'off': raise, retry"),
    Case("kill-switch-failing", RESHARD, call="kill-switch", times=ALWAYS, changes=0, rows=(), mails=(),
         dead_letter=True, why="the switch never read: no change, the dead-letter queue gets it"),
    Case("describe-once", RESHARD, call="describe", rows=("applied", "failed"),
         why="evidence unreadable: audited failed, raised; the retry acts once"),
    Case("metrics-failing", RESHARD, call="metrics", times=ALWAYS, changes=0, rows=("failed",) * 3, mails=(),
         dead_letter=True, why="every attempt audited failed; the dead-letter queue gets the last"),
    Case("idempotency-begin-once", RESHARD, call="idempotency-begin", why="Powertools raises before we run"),
    Case("lease-once", RESHARD, call="lease", why="the lease cannot be taken: raise before any change"),
    Case("audit-claim-once", RESHARD, call="audit-claim", why="the write-ahead claim fails: no change, retry acts"),
    Case("audit-claim-lost-answer", RESHARD, call="audit-claim", after=True, changes=0, rows=("failed",),
         mails=("FAILED",), why="the claim was written but its answer lost: the retry finds the claim, re-reads "
         "(no change), finishes the row as not applied; never a change it cannot account for"),
    Case("crash-before-change", RESHARD, call="audit-begin", crash=True, changes=0, rows=("failed",),
         mails=("FAILED",), why="died between the claim and the change: the retry settles it as not applied"),
    # After the change: never a second change; the retry (if any) resumes: re-reads, finishes, e-mails.
    Case("audit-finish-once", RESHARD, call="audit-finish", mails=("APPLIED", "APPLIED"),
         why="the row cannot be finished: e-mailed, then raised; the retry finishes it (and e-mails again)"),
    Case("audit-finish-failing", RESHARD, call="audit-finish", times=ALWAYS, rows=("in-flight",),
         dead_letter=True, why="the row stays in-flight (counted as applied); e-mailed, and dead-lettered"),
    Case("notify-once", RESHARD, call="notify", why="the e-mail fails after the change: the retry sends it"),
    Case("notify-failing", RESHARD, call="notify", times=ALWAYS, mails=(), dead_letter=True,
         why="no e-mail can go out: the dead-letter queue says so; the row is applied"),
    Case("idempotency-end-once", RESHARD, call="idempotency-end",
         why="Powertools cannot save the result: it raises, and its in-progress record answers the retries as "
         "a duplicate delivery in progress, quietly: one change, one e-mail, no dead-letter message"),
    Case("crash-after-change", RESHARD, call="audit-finish", crash=True,
         why="died right after the change: the retry re-reads, finishes the row as applied, e-mails"),
    Case("crash-at-e-mail", RESHARD, call="notify", crash=True, why="died at the e-mail: the retry e-mails"),
    Case("lease-release-failing", RESHARD, call="lease-release", times=ALWAYS,
         why="the lease is not given back: logged; it expires on its own"),
    # The other actions.
    Case("retention-ok", RETENTION, why="the control"),
    Case("retention-500-after", RETENTION, ERROR_500_AFTER, why="re-read shows the new retention"),
    Case("retention-limit", RETENTION, LIMIT, changes=0, rows=("limit-reached",), mails=("LIMIT-REACHED",),
         why="AWS limit reached"),
    Case("retention-crash-after-change", RETENTION, call="audit-finish", crash=True, why="the retry settles it"),
    Case("lease-table-ok", LEASE_TABLE, why="the control"),
    Case("lease-table-500-after", LEASE_TABLE, ERROR_500_AFTER, why="re-read (DescribeTable) shows the capacity"),
    Case("lease-table-timeout-before", LEASE_TABLE, TIMEOUT_BEFORE, changes=0, rows=("failed",),
         mails=("FAILED",), why="re-read shows the old capacity"),
    Case("efo-ok", EFO, why="the control: one consumer registered"),
    Case("efo-500-after", EFO, ERROR_500_AFTER,
         why="registered in spite of the 5xx: the step re-reads (ListStreamConsumers) and uses it"),
    Case("efo-limit", EFO, LIMIT, changes=0, rows=("limit-reached",), mails=("LIMIT-REACHED",),
         why="AWS's consumer limit reached: no consumer, not retried"),
    Case("efo-crash-after-change", EFO, call="audit-finish", crash=True,
         why="died after registering: the retry lists the consumers, finishes the row as applied"),
    # tune-event-source: Lambda's REST-JSON (UpdateEventSourceMapping, PUT, 202) through the same loopback; the
    # step's re-read before the change (GetEventSourceMapping, GET) goes through it too, unfaulted.
    Case("tune-ok", TUNE, why="the control: ParallelizationFactor 1 -> 2, audited applied, e-mailed"),
    Case("tune-500-after", TUNE, ERROR_500_AFTER,
         why="a ServiceException after Lambda took it: re-read (GetEventSourceMapping) shows factor 2, applied"),
    Case("tune-timeout-before", TUNE, TIMEOUT_BEFORE, changes=0, rows=("failed",), mails=("FAILED",),
         why="no answer and no change: the re-read shows factor 1, failed, not sent again"),
    Case("tune-reset-after", TUNE, RESET_AFTER, why="connection dropped after the update: the re-read settles it"),
    Case("tune-conflict", TUNE, CONFLICT, changes=0, rows=("failed",), mails=("FAILED",),
         why="409 ResourceConflictException (another operation in progress): refused, no change, no re-read"),
    Case("tune-throttled", TUNE, THROTTLED, changes=0, rows=("failed",), mails=("FAILED",),
         why="429 TooManyRequestsException: botocore counts it as throttling, yet the write client sends it once"),
    Case("tune-crash-after-change", TUNE, call="audit-finish", crash=True,
         why="died after the update: the retry re-reads the mapping, finishes the row as applied, e-mails"),
]  # fmt: skip
EXPECTED_CASES = 46


def test_the_suite_states_its_case_count() -> None:
    # Given the table the README links: its size is stated here, so a case cannot vanish unnoticed
    assert len(CASES) == EXPECTED_CASES
    assert len({case.id for case in CASES}) == len(CASES)


def test_the_loopback_answers_lambdas_rest_json_as_aws_does(aws: Any, loopback: str) -> None:
    # Given a Lambda consumer's mapping in moto, and a client with the write client's config on the loopback
    aws.create_stream(STREAM, 2)
    uuid = aws.create_consumer("orders-processor", STREAM)
    config = WRITE_CONFIG.merge(Config(read_timeout=WRITE_READ_TIMEOUT))
    client = boto3.client("lambda", region_name=REGION, endpoint_url=loopback, config=config)

    # When it updates the mapping (PUT) and reads it back (GET)
    response = client.update_event_source_mapping(UUID=uuid, ParallelizationFactor=2)

    # Then the answer is AWS's: 202 with the mapping, applied to moto
    assert (response["ResponseMetadata"]["HTTPStatusCode"], response["UUID"]) == (202, uuid)
    assert client.get_event_source_mapping(UUID=uuid)["ParallelizationFactor"] == 2
    assert FaultyAws.requests == FaultyAws.applied == ["UpdateEventSourceMapping"]
    # And each failure reaches botocore as AWS's: the code (x-amzn-ErrorType), the status and the message
    for mode, (status, code, message) in FAILURES[REST_JSON].items():
        FaultyAws.mode = mode
        with pytest.raises(ClientError) as raised:
            client.update_event_source_mapping(UUID=uuid, BatchSize=50)
        answer = raised.value.response
        assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), mode
        assert answer["Error"]["Message"] == message, mode
    # And moto's own refusal goes through with its status (an unknown mapping: 404; moto's update of one
    # answers 200, hence the read)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")


def start(aws: Any, action: str) -> tuple[dict[str, Any], Callable[[], str]]:
    """The stream (and table) in a state that calls for `action`, in enforce; the event; the state's reader."""
    kinesis = aws.client("kinesis")

    def summary() -> dict[str, Any]:
        return dict(kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"])

    if action == RESHARD:
        aws.create_stream(STREAM, 2)
        aws.put_policy(policy(mode="enforce"))
        # 10 shards' worth of writes: a retry that planned again would reshard again (4 -> 8), unless stopped
        aws.push_traffic(STREAM, **NEEDS_TEN)
        return alarm_event(WRITE_ALARM), lambda: f"{summary()['OpenShardCount']} shards"
    if action == RETENTION:
        lagging_stream(aws, "enforce")
        return alarm_event(AGE_ALARM, metric=ITERATOR_METRIC), lambda: f"{summary()['RetentionPeriodHours']} h"
    if action == EFO:
        aws.create_stream(STREAM, 2)
        kcl = [{"kcl": "orders-kcl"}, {"kcl": "orders-reports"}]
        aws.put_policy(efo_policy("enforce", kcl, consumer_name="orders-analytics"))
        read_throttled(aws)
        consumers = lambda: len(kinesis.list_stream_consumers(StreamARN=summary()["StreamARN"])["Consumers"])  # noqa: E731
        return alarm_event(READ_ALARM, metric=READ_METRIC), lambda: f"{consumers()} consumers"
    if action == TUNE:
        uuid = lagging_consumer(aws, "enforce")  # a Lambda consumer 10 minutes behind on idle shards
        return lag_event(), lambda: f"factor {parallelization(aws, uuid)}"
    set_up(aws, "enforce")
    throttled(aws)
    event: dict[str, Any] = {}
    fire(lambda e: event.update(e) or {})
    return event, lambda: f"{aws.table(APP)['ProvisionedThroughput']['WriteCapacityUnits']} WCU"


CHANGED = {
    RESHARD: ("2 shards", "4 shards"),
    RETENTION: ("24 h", "48 h"),
    LEASE_TABLE: ("10 WCU", "20 WCU"),
    EFO: ("0 consumers", "1 consumers"),
    TUNE: ("factor 1", "factor 2"),
}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_at_most_one_change_per_state_change_whatever_fails(
    case: Case, aws: Any, invoke: Any, loopback: str, inject: list[Injection]
) -> None:
    # Given a stream whose alarm calls for the action, in enforce, and the case's fault
    event, state = start(aws, case.action)
    FaultyAws.mode = case.mode
    if case.call is not None:
        error: BaseException = Crash(case.call) if case.crash else server_error()(case.call)
        throttle = case.call in ("policy", "kill-switch")
        if throttle and not case.crash:
            error = server_error("ThrottlingException", 400)("GetParameter")
        inject.append(Injection(CALLS[case.call], error, times=case.times, after=case.after))

    # When Lambda delivers the alarm's state change (and retries it while it fails)
    delivery = deliver(aws, invoke, event)
    inject.clear()

    # Then at most one change reached the stream: exactly the case's, and the stream shows it
    assert len(FaultyAws.applied) == case.changes, case.why
    assert state() == CHANGED[case.action][case.changes]
    # And no mutating call was ever resent by the SDK: one request per change attempted
    assert len(FaultyAws.requests) <= 1
    # And the audit tells what happened to the stream
    rows = sorted(row["outcome"] for row in aws.audit_rows(STREAM))
    assert tuple(rows) == tuple(sorted(case.rows)), case.why
    # And every failure is told: in an e-mail, or in the dead-letter message
    tags = tuple(mail["Subject"].split("]")[0].lstrip("[") for mail in aws.emails())
    assert tags == case.mails, case.why
    assert (delivery.dead_letter is not None) == case.dead_letter, delivery.errors
    assert case.mails or case.dead_letter or not case.changes
