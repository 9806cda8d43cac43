"""boto3 clients with the remediator's retry policy.

Adaptive retries make the client itself slow down when AWS throttles the control plane
(DescribeStreamSummary 20/s per account, UpdateShardCount 10/s), so an alarm storm across
many streams backs off instead of turning into a throttling storm.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
# Mutating calls are made once: a retry after a timeout or a 5xx could make a second change. A failure is
# audited and resolved by re-reading the resource, never by sending the change again.
WRITE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)


@cache
def _session() -> boto3.session.Session:
    # One session per process: each new one re-reads the service models, which costs cold-start time.
    return boto3.session.Session()


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None, writes: bool = False) -> Any:
    """A client for reads (adaptive retries), or with `writes=True` for the write ports (no SDK retry)."""
    config = WRITE_CONFIG if writes else RETRY_CONFIG
    return _session().client(service, region_name=region, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]
