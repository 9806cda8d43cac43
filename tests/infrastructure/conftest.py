"""Infrastructure fixtures: each CDK app is synthesized once per session, offline, with cdk-nag applied.

Every app gets the context the CDK CLI would pass it (cdk.json's feature flags plus asset and path
metadata), so the templates under test are the ones `cdk synth` / `cdk deploy` produce.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infrastructure.support import EXAMPLE_POLICY, Synth, synthesize, write_policies

# Two streams in two files with different settings. oncall@ watches both streams, orders-team@ only orders;
# payments has its write-throttling detector disabled.
ORDERS_YAML = """\
version: 1
streams:
  - name: orders
    mode: enforce
    notify:
      emails: [oncall@example.com, orders-team@example.com]
    consumers:
      - function: orders-processor
    detectors:
      iterator_age: {threshold_ms: 120000, evaluation_periods: 10, datapoints_to_alarm: 4}
      write_throttling: {threshold_records: 5, evaluation_periods: 3, datapoints_to_alarm: 2}
    actions:
      reshard: {min_shards: 2, max_shards: 32}
"""
PAYMENTS_YAML = """\
version: 1
streams:
  - name: payments
    notify:
      emails: [oncall@example.com]
    detectors:
      iterator_age: {threshold_ms: 30000, evaluation_periods: 4, datapoints_to_alarm: 4}
      write_throttling: {enabled: false}
    actions:
      reshard: {max_shards: 8}
"""
# Added to the two above in the "grown" policy directory; sorts before both existing streams.
CLICKSTREAM_YAML = """\
version: 1
streams:
  - name: clickstream
    actions:
      reshard: {max_shards: 4}
"""


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policies(
        tmp_path_factory.mktemp("policies"), {"orders.yaml": ORDERS_YAML, "payments.yaml": PAYMENTS_YAML}
    )


@pytest.fixture(scope="session")
def grown_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policies(
        tmp_path_factory.mktemp("grown-policies"),
        {"orders.yaml": ORDERS_YAML, "payments.yaml": PAYMENTS_YAML, "clickstream.yaml": CLICKSTREAM_YAML},
    )


@pytest.fixture(scope="session")
def synth(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app built from the two-stream test policy directory."""
    return synthesize([policy_dir], tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def grown_synth(grown_policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same app after a third stream was added to the policy directory."""
    return synthesize([grown_policy_dir], tmp_path_factory.mktemp("cdk.out-grown"))


@pytest.fixture(scope="session")
def example_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app built from the documented example, examples/policies/example.yaml (not the user's policies/)."""
    return synthesize([EXAMPLE_POLICY], tmp_path_factory.mktemp("cdk.out-example"))
