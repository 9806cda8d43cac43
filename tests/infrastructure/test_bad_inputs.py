"""Bad inputs fail synthesis with a clear message and write nothing: an invalid policy, no policy, a missing layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App
from remediator.policy_files import NO_POLICY_FILES, PolicyValidationError

from stacks.app_builder import LayerNotBuilt, build_app, no_policy_message
from tests.infrastructure.support import cli_context, run_app, write_policies

pytestmark = pytest.mark.xdist_group("infrastructure")

BAD_POLICY = """\
version: 1
streams:
  - name: x
    actions:
      reshard: {max_shards: 0}
"""


def test_bad_policy_fails_synth_naming_file_stream_and_field(tmp_path: Path) -> None:
    # Given a policy directory whose only stream has max_shards 0
    policy_dir = write_policies(tmp_path / "policies", {"bad.yaml": BAD_POLICY})
    outdir = tmp_path / "cdk.out"
    # When app.py is run with it as policyDir
    result = run_app({**cli_context(), "policyDir": str(policy_dir)}, outdir)
    # Then it exits 1, saying which file, stream and field are wrong, without a traceback
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-2:] == [
        "Invalid policy (1 error(s)):",
        f"{policy_dir / 'bad.yaml'}:5: stream 'x': actions.reshard.max_shards: "
        "Input should be greater than or equal to 1 (got 0)",
    ]
    assert "Traceback" not in result.stderr
    # And no template was written
    assert list(outdir.rglob("*.template.json")) == []


@pytest.mark.parametrize("layout", ["missing", "without-python-dir"])
def test_missing_layer_gives_a_clear_message(policy_dir: Path, tmp_path: Path, layout: str) -> None:
    # Given a layer directory that was never built (absent, or present without its python/ folder)
    layer_dir = tmp_path / "missing"
    if layout == "without-python-dir":
        layer_dir.mkdir()
    app = App(outdir=str(tmp_path / "cdk.out"), context=cli_context())
    # When the app is built
    with pytest.raises(LayerNotBuilt) as raised:
        build_app(app, [policy_dir], layer_dir=layer_dir)
    # Then the error says where the layer was expected and how to build it
    assert str(raised.value) == f"Lambda layer not built at {layer_dir}: run `make layer` first"
    # And no stack was added to the app
    assert app.node.children == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, ["{dir}: " + NO_POLICY_FILES]),
        (
            {"empty.yaml": "version: 1\nstreams: []\n"},
            [
                "{dir}/empty.yaml:2: streams: no stream to protect (an empty list never means every stream): "
                "list each stream under `streams:` as `- name: <stream>` with its "
                "`actions: {{reshard: {{max_shards: <most shards it may have>}}}}`"
            ],
        ),
        (
            {"wildcard.yaml": 'version: 1\nstreams:\n  - name: "*"\n    actions:\n      reshard: {max_shards: 2}\n'},
            [
                "{dir}/wildcard.yaml:3: stream '*': name: '*' is not a Kinesis stream name: use 1-128 letters, "
                "digits, '_', '.' or '-' (one stream per entry; wildcards are not allowed)"
            ],
        ),
    ],
    ids=["no-files", "empty-stream-list", "wildcard-stream"],
)
def test_no_policy_never_means_all_streams(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    # Given a policy directory with no stream, or with a wildcard for a stream name
    policy_dir = write_policies(tmp_path / "policies", files)
    app = App(outdir=str(tmp_path / "cdk.out"), context=cli_context())
    # When the app is built
    with pytest.raises(PolicyValidationError) as raised:
        build_app(app, [policy_dir])
    # Then it fails naming the file (and stream), rather than granting on every stream
    assert [str(error) for error in raised.value.errors] == [line.format(dir=policy_dir) for line in expected]
    assert app.node.children == []


@pytest.mark.parametrize("readme", [True, False], ids=["readme-only", "empty"])
def test_synth_with_no_policy_stops_naming_the_folder_and_what_to_do(tmp_path: Path, readme: bool) -> None:
    # Given a policy folder with no policy file (as policies/ ships: a README only)
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    if readme:
        (policy_dir / "README.md").write_text("# Your policies\n", encoding="utf-8")
    outdir = tmp_path / "cdk.out"
    # When app.py is run with it as policyDir (cdk synth / make deploy)
    result = run_app({**cli_context(), "policyDir": str(policy_dir)}, outdir)
    # Then it exits 1 with the no-policy message (not "Invalid policy"), without a traceback
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().endswith(no_policy_message(str(policy_dir)))
    assert "Invalid policy" not in result.stderr
    assert "Traceback" not in result.stderr
    # And it names the folder and what to do
    assert f"{policy_dir} has no policy file" in result.stderr
    assert f"cp examples/policies/example.yaml {policy_dir}/my-streams.yaml" in result.stderr
    # And no template was written
    assert list(outdir.rglob("*.template.json")) == []
