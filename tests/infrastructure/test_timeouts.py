"""The function's timeout covers the worst case of what follows a change (issue 8.2), and the lease outlives it.

The worst case is computed from the clients' own retry configuration (clients/aws.py: attempts, connect and read
timeouts, botocore's backoff); the stack's timeout is read from the synthesized template.
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from remediator.clients.aws import (
    BOOKKEEPING_CALLS_AFTER_CHANGE,
    CONFIRM_READS,
    RETRY_CONFIG,
    WRITE_CONFIG,
    seconds_after_change,
    worst_case_seconds,
)
from remediator.core.deployment import FUNCTION_TIMEOUT_SECONDS, LEASE_MARGIN_SECONDS

from tests.infrastructure.support import Synth, function

pytestmark = pytest.mark.xdist_group("infrastructure")

# What the invocation may spend before the change (policy, lease, evidence, plan, claim) in the common case:
# the part of the timeout seconds_after_change does not use. Below it, an invocation would often refuse to start
# a change (NoTimeForChange) for lack of time.
BEFORE_CHANGE_SECONDS = 60


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        # 1 attempt: connect 2 s + read 10 s, no retry
        (Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=10), 12),
        # 3 attempts of 2 + 5 s, then the retries' longest backoff: (1 + 5) and (2 + 5) s with a retry-after header
        (Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5), 34),
        # 8 attempts (the old adaptive config's count) of 5 + 20 s: 200 s of waiting plus 1+2+4+8+16+20+20 + 7 x 5
        (Config(retries={"mode": "standard", "max_attempts": 7}, connect_timeout=5, read_timeout=20), 306),
    ],
)
def test_the_worst_case_of_one_call(config: Config, seconds: float) -> None:
    assert worst_case_seconds(config) == seconds


def test_a_change_is_sent_once_and_reads_retry_a_bounded_number_of_times() -> None:
    assert WRITE_CONFIG.retries == {"mode": "standard", "total_max_attempts": 1}
    assert RETRY_CONFIG.retries["mode"] == "standard"  # adaptive's rate limiter may wait without bound


def test_the_function_timeout_covers_what_follows_a_change(synth: Synth) -> None:
    # Given the worst case of one change, its re-reading and its bookkeeping, from the clients' configuration
    after = worst_case_seconds(WRITE_CONFIG) + (CONFIRM_READS + BOOKKEEPING_CALLS_AFTER_CHANGE) * worst_case_seconds(
        RETRY_CONFIG
    )
    assert seconds_after_change() == after
    # When the stack is synthesized
    _, fn = function(synth)
    # Then its timeout is the one the remediator and its lease are built for, and it leaves room for that worst
    # case after a common start
    assert fn["Properties"]["Timeout"] == FUNCTION_TIMEOUT_SECONDS
    assert after + BEFORE_CHANGE_SECONDS <= FUNCTION_TIMEOUT_SECONDS
    # And Lambda allows it (at most 900 s), with the lease expiring after the function could have run
    assert FUNCTION_TIMEOUT_SECONDS <= 900
    assert LEASE_MARGIN_SECONDS > 0
