"""`cdk synth` loads the stack, the registries and core, never the remediator's runtime: the constants both
share (alarm prefix, kill-switch value, environment names, service name) live in remediator.core.deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remediator.core.registry import REGISTRY

from tests.infrastructure.support import cli_context, run_app

pytestmark = pytest.mark.xdist_group("infrastructure")

MARKER = "LOADED-MODULES="
# Runs app.py as the CDK CLI does (as __main__, context and outdir from the environment), then lists sys.modules.
PROBE = (
    "import json, runpy, sys; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__'); "
    f"print({MARKER!r} + json.dumps(sorted(sys.modules)))"
)
# The runtime: Powertools (Logger, Tracer, Metrics, parser), the handler and its service, the boto3 adapters.
RUNTIME = ("aws_lambda_powertools", "remediator.observability", "remediator.handler", "remediator.service")
RUNTIME_PACKAGES = ("remediator.clients",)


@pytest.fixture(scope="module")
def synth_modules(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], Path]:
    """The modules loaded by a whole `cdk synth` of the test policies, in a fresh interpreter."""
    outdir = tmp_path_factory.mktemp("cdk.out-imports")
    result = run_app({**cli_context(), "policyDir": str(policy_dir)}, outdir, "-c", PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    return set(json.loads(line.removeprefix(MARKER))), outdir


def test_synth_ran_the_stack_and_the_registries(synth_modules: tuple[set[str], Path]) -> None:
    # Given the modules a subprocess loaded while synthesizing the app
    modules, outdir = synth_modules
    # Then it synthesized the stack (so the check below is not vacuous) ...
    assert list(outdir.glob("*.template.json"))
    assert {"stacks.constructs.alarms", "stacks.constructs.remediator", "remediator.core.deployment"} <= modules
    # ... with every registered plugin loaded
    plugins = {type(p).__module__ for p in (*REGISTRY.symptoms.values(), *REGISTRY.actions.values())}
    assert plugins <= modules


def test_synth_does_not_import_the_runtime(synth_modules: tuple[set[str], Path]) -> None:
    # Given the modules a subprocess loaded while synthesizing the app
    modules, _ = synth_modules
    # Then none of them is the runtime's observability stack, Powertools, the handler or the AWS clients
    loaded = sorted(
        m
        for m in modules
        if m in RUNTIME or m.startswith(tuple(f"{name}." for name in RUNTIME)) or m.startswith(RUNTIME_PACKAGES)
    )
    assert loaded == []
