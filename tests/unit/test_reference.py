"""The generated reference: the README's copy is what the registry says, for every plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
from remediator.core.policy import field_name
from remediator.core.registry import REGISTRY
from remediator.reference import BEGIN, END, markdown, replace_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_the_generated_one() -> None:
    # Given the README and the reference generated from the registry
    text = README.read_text(encoding="utf-8")
    # When the generated block is put in its place
    # Then nothing changes: run `make docs` when this fails
    assert replace_block(text, markdown()) == text, "README's reference is stale: run `make docs`"


@pytest.mark.parametrize("symptom", sorted(REGISTRY.symptoms))
def test_every_symptom_has_its_detector_fields_and_alarms_in_the_reference(symptom: str) -> None:
    # Given the generated reference
    text = markdown()
    # Then the symptom's detector block and its alarm appear
    for name in REGISTRY.symptoms[symptom].detector_schema.model_fields:
        assert f"`detectors.{field_name(symptom)}.{name}`" in text
    assert f"| `{symptom}` | `kinesis-remediator-orders/{symptom}" in text


@pytest.mark.parametrize("action", sorted(REGISTRY.actions))
def test_every_action_has_its_block_and_grants_in_the_reference(action: str) -> None:
    # Given the generated reference
    text = markdown()
    plugin = REGISTRY.actions[action]
    # Then the action's block and its IAM actions appear
    for name in plugin.policy_schema.model_fields:
        assert f"`actions.{field_name(action)}.{name}`" in text
    for grant in plugin.grants:
        for iam_action in grant.actions:
            assert f"`{iam_action}`" in text


def test_replace_block_keeps_the_text_around_the_markers() -> None:
    # Given a document with the markers and stale content between them
    text = f"intro\n{BEGIN}\nstale\n{END}\noutro\n"
    # When the block is replaced
    # Then only the part between the markers changes
    assert replace_block(text, "fresh") == f"intro\n{BEGIN}\nfresh\n{END}\noutro\n"
