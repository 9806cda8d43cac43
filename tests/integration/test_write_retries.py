"""Mutating calls go out once: botocore's own retry layer does not resend a change after a 5xx or a throttle.

A loopback HTTP endpoint answers as AWS does when it fails (500, or 400 with a throttling error), and
counts the requests that reach it; the clients are the product's own, retry configuration included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from botocore.exceptions import ClientError
from remediator.clients.aws import client

RESPONSES = {
    "internal-error": (500, {"__type": "InternalFailure", "message": "We encountered an internal error."}),
    "throttled": (400, {"__type": "LimitExceededException", "message": "Rate exceeded for stream orders."}),
}


class FailingAws(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []
    answer = RESPONSES["internal-error"]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        FailingAws.requests.append(self.headers.get("X-Amz-Target", ""))
        status, body = FailingAws.answer
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailingAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FailingAws.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("failure", sorted(RESPONSES))
def test_a_write_client_sends_a_change_once_whatever_aws_answers(endpoint: str, failure: str) -> None:
    # Given AWS answering every request with this failure, and the write ports' client
    FailingAws.answer = RESPONSES[failure]
    kinesis = client("kinesis", region="us-east-1", endpoint_url=endpoint, writes=True)
    # When a change is sent
    with pytest.raises(ClientError):
        kinesis.update_shard_count(StreamName="orders", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    # Then it reached AWS exactly once
    assert FailingAws.requests == ["Kinesis_20131202.UpdateShardCount"]


def test_a_read_client_retries_a_failed_read(endpoint: str) -> None:
    # Given the same failing AWS, and the read side's client
    FailingAws.answer = RESPONSES["internal-error"]
    kinesis = client("kinesis", region="us-east-1", endpoint_url=endpoint)
    # When a read fails
    with pytest.raises(ClientError):
        kinesis.describe_stream_summary(StreamName="orders")
    # Then botocore retried it (the control: the loopback does exercise the retry layer)
    assert len(FailingAws.requests) > 1
