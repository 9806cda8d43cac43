"""Shared test set-up: fake credentials so nothing can ever reach a real AWS account."""

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "KinesisRemediatorTests",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)

# The user's policy folder is theirs: replacing policies/example.yaml, the first thing a user does, must not turn
# the suite red. Every test brings its own policies; a test that reads policies/ in this process fails, naming it.
# (Subprocesses, such as app.py under the CDK CLI, are checked statically: tests/unit/test_own_policies.py.)
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from remediator import policy_files

USERS_POLICIES = Path(__file__).resolve().parents[1] / "policies"

# Tests assert behaviour, never time: a property must not fail because a busy machine ran one example slowly
# (hypothesis' default deadline is 200 ms per example).
settings.register_profile("kinesis-remediator", deadline=None)
settings.load_profile("kinesis-remediator")


class ReadTheUsersPolicies(AssertionError):
    pass


def reads_the_users_policies(path: str | Path) -> bool:
    resolved = Path(path).resolve()
    return resolved == USERS_POLICIES or USERS_POLICIES in resolved.parents


@pytest.fixture(autouse=True, scope="session")
def _tests_never_read_the_users_policies() -> Iterator[None]:
    expand = policy_files.policy_paths

    def guarded(paths: Iterable[str | Path]) -> list[Path]:
        paths = list(paths)
        for path in paths:
            if reads_the_users_policies(path):
                raise ReadTheUsersPolicies(
                    f"a test read {path}, the user's policy folder: bring a fixture policy instead "
                    "(tests/infrastructure/conftest.py's policy_dir, or write_policies(tmp_path, ...))"
                )
        return expand(paths)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(policy_files, "policy_paths", guarded)
        yield
