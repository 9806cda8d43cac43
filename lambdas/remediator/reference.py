"""The policy reference and the plugin catalogue, generated from the registry (README and `reference`).

Nothing here is written by hand per plugin: a new symptom or action appears in the reference as soon
as it registers, and a test keeps the README's copy equal to this output.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from remediator.core.alarm import alarm_name
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.metrics import Metric, MetricMath
from remediator.core.registry import REGISTRY

SAMPLE_STREAM = "orders"
SAMPLE_POLICY: dict[str, Any] = {
    "name": SAMPLE_STREAM,
    "consumers": [{"function": "orders-processor"}, {"efo": "orders-analytics"}, {"kcl": "orders-indexer"}],
}


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, tuple | list):
        return "`[]`" if not value else f"`{list(value)}`"
    return f"`{value}`"


def _bounds(info: FieldInfo) -> str:
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
    parts = []
    for item in info.metadata:
        if isinstance(item, Ge | Gt | Le | Lt):
            attribute = type(item).__name__.lower()
            bound = getattr(item, attribute)
            parts.append(f"{words[attribute]} {bound:,}" if isinstance(bound, int) else f"{words[attribute]} {bound}")
    return f" ({', '.join(parts)})" if parts else ""


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) is tuple:
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0], True
    return None, False


def _rows(model: type[BaseModel], prefix: str = "") -> list[list[str]]:
    rows = []
    for name, info in model.model_fields.items():
        inner, is_list = _model_of(info.annotation)
        path = f"{prefix}{name}"
        if inner is not None and inner.model_fields:
            rows += _rows(inner, f"{path}[]." if is_list else f"{path}.")
            continue
        rows.append([f"`{path}`", _default(info), f"{info.description or ''}{_bounds(info)}".strip()])
    return rows


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_text(source: Metric | MetricMath) -> str:
    if isinstance(source, MetricMath):
        inner = ", ".join(f"{k} = {_metric_text(m)}" for k, m in source.inputs.items())
        return f"`{source.expression}` where {inner}"
    dims = ", ".join(name for name, _ in source.dimensions)
    return f"`{source.namespace} {source.name}` {source.statistic} by {dims}"


def policy_reference() -> str:
    return _table(["Field", "Default", "Meaning"], _rows(REGISTRY.stream_policy_model()))


def symptom_catalogue() -> str:
    policy = REGISTRY.parse_stream_policy({**SAMPLE_POLICY, **_required_blocks()})
    rows = []
    for key, symptom in REGISTRY.symptoms.items():
        for spec in symptom.alarms(policy, symptom.detector(policy)):
            rows.append(
                [
                    f"`{key}`",
                    f"`{alarm_name(DEFAULT_ALARM_PREFIX, SAMPLE_STREAM, key, spec.qualifier)}`",
                    _metric_text(spec.metric),
                    f"`{spec.missing_data.value}`",
                    symptom.meaning,
                ]
            )
    return _table(["Symptom", f"Alarm (stream `{SAMPLE_STREAM}`)", "Metric", "Missing data", "It means"], rows)


def action_catalogue() -> str:
    rows = [
        [
            f"`{key}`",
            action.title,
            ", ".join(
                [f"`{a}`" for grant in action.grants for a in grant.actions]
                + [f"`{a}` (read, in dry-run too)" for grant in action.read_grants for a in grant.actions]
            ),
            ", ".join(dict.fromkeys(grant.scope.name for grant in (*action.grants, *action.read_grants))),
        ]
        for key, action in REGISTRY.actions.items()
    ]
    return _table(["Action", "What it does", "IAM actions", "On"], rows)


def _required_blocks() -> dict[str, Any]:
    """The smallest action blocks that validate, for rendering the sample alarms."""
    actions = {}
    for key, action in REGISTRY.actions.items():
        required = {n: i for n, i in action.policy_schema.model_fields.items() if i.is_required()}
        if required:
            actions[key.replace("-", "_")] = {n: _smallest(i) for n, i in required.items()}
    return {"actions": actions}


def _smallest(info: FieldInfo) -> Any:
    for item in info.metadata:
        if isinstance(item, Ge):
            return item.ge
    return 1


def markdown() -> str:
    return "\n\n".join(
        [
            "### Policy fields",
            policy_reference(),
            "### Symptoms and their alarms",
            symptom_catalogue(),
            "### Actions",
            action_catalogue(),
        ]
    )


BEGIN, END = "<!-- reference:begin (make docs) -->", "<!-- reference:end -->"


def replace_block(text: str, block: str) -> str:
    """`text` with the part between the reference markers replaced by `block`."""
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{block}\n{text[stop:]}"


def main(argv: list[str] | None = None) -> int:
    """`python -m remediator.reference README.md`: rewrite the README's generated reference in place."""
    import sys
    from pathlib import Path

    for path in map(Path, argv if argv is not None else sys.argv[1:]):
        path.write_text(replace_block(path.read_text(encoding="utf-8"), markdown()), encoding="utf-8")
        print(f"updated the generated reference in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
