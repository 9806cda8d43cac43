"""boto3 clients with the remediator's retry policy, and how long a call can take at worst.

Reads (and the remediator's own bookkeeping: audit, idempotency, e-mail) retry with the SDK's standard mode,
a few attempts with short timeouts, so that their worst case is a known number of seconds: the function's
timeout is sized from it (`seconds_after_change`, checked against the stack by a test), and a change is only
started when the invocation has that much time left. (Adaptive mode was used before: its client-side rate
limiter may sleep for an unbounded time, and in Lambda each invocation has its own client anyway, so it did not
slow an alarm storm down across invocations; a throttled read now fails fast and Lambda's retry, a minute
later, spreads the load.)

Mutating calls are made once: a retry after a timeout or a 5xx could make a second change. A failure is
audited and resolved by re-reading the resource (Action.confirm), never by sending the change again.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff

READ_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
# A mutating call may take AWS longer to answer (UpdateTable, RegisterStreamConsumer) than a read.
WRITE_READ_TIMEOUT_SECONDS = 10

RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": READ_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)
WRITE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=WRITE_READ_TIMEOUT_SECONDS,
)

# The calls an invocation makes after a change is sent, at most: re-reading to confirm an uncertain change
# (Action.confirm reads at most this many times), finishing the write-ahead audit row, the e-mail, and giving
# the stream's lease back.
CONFIRM_READS = 2
BOOKKEEPING_CALLS_AFTER_CHANGE = 3


def worst_case_seconds(config: Config) -> float:
    """The longest one call on a client with this config can take: every attempt waits out both timeouts, and
    every retry waits the SDK's longest backoff (botocore's standard mode: min(2**i, 20) s for the i-th retry of
    a throttled call, raised by up to 5 s when AWS sends x-amz-retry-after)."""
    settings: Any = config  # botocore's Config sets its attributes dynamically
    retries = settings.retries or {}
    attempts = int(retries.get("total_max_attempts") or retries.get("max_attempts", 0) + 1)
    per_attempt = float(settings.connect_timeout) + float(settings.read_timeout)
    policy: Any = ExponentialBackoff
    extra = float(getattr(policy, "_RETRY_AFTER_MAX_ADDITIONAL", 0))
    waits = sum(min(policy._BASE**i, policy._MAX_BACKOFF) + extra for i in range(attempts - 1))
    return attempts * per_attempt + waits


def seconds_after_change() -> float:
    """The worst case of everything an invocation does once a change is sent: the change itself, the
    re-reading that settles an uncertain one, and the bookkeeping. A step is only started with this much time
    left; the function's timeout must leave room for it (tests/infrastructure/test_timeouts.py)."""
    return worst_case_seconds(WRITE_CONFIG) + (CONFIRM_READS + BOOKKEEPING_CALLS_AFTER_CHANGE) * worst_case_seconds(
        RETRY_CONFIG
    )


@cache
def _session() -> boto3.session.Session:
    # One session per process: each new one re-reads the service models, which costs cold-start time.
    return boto3.session.Session()


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None, writes: bool = False) -> Any:
    """A client for reads (standard retries), or with `writes=True` for the write ports (no SDK retry)."""
    config = WRITE_CONFIG if writes else RETRY_CONFIG
    return _session().client(service, region_name=region, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]
