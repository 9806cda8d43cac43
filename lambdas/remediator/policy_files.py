"""Reading policy files from disk: YAML -> validated PolicySet, or every error with file, stream and field.

Used by the CLI and the CDK app; the Lambda receives policies already validated (as JSON in SSM).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from remediator.core.policy import CONSUMER_KINDS, PolicyDocumentBase, StreamPolicy, moved_key_hint
from remediator.core.registry import REGISTRY

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PolicyError:
    file: str
    stream: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.stream is not None:
            where.append(f"stream '{self.stream}'")
        if self.field:
            where.append(self.field)
        return f"{': '.join(where)}: {self.message}"


class PolicyValidationError(Exception):
    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


# The project's commented example: documentation, never read unless the user copies it into a policy folder.
EXAMPLE_POLICY = "examples/policies/example.yaml"
NO_POLICY_FILES = f"no policy files (*.yaml or *.yml) found; to start, copy {EXAMPLE_POLICY} here and edit it"


class NoPolicyFiles(PolicyValidationError):
    """Nothing to load: the folders given hold no policy file (not one invalid file: no file at all)."""


@dataclass(frozen=True)
class PolicySet:
    """All streams under protection, each with the file it came from."""

    streams: Mapping[str, StreamPolicy]
    sources: Mapping[str, str]

    def get(self, stream: str) -> StreamPolicy | None:
        return self.streams.get(stream)

    def names(self) -> list[str]:
        return sorted(self.streams)


def policy_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their policy files; keep files as given (missing ones are reported later)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found


def _stream_label(raw: Any, index: int) -> str:
    try:
        name = raw["streams"][index]["name"]
        if isinstance(name, str) and name:
            return name
    except (KeyError, IndexError, TypeError):
        pass
    return f"#{index + 1}"


def _errors_from_validation(file: str, raw: Any, error: ValidationError) -> list[PolicyError]:
    errors = []
    items = error.errors()
    stream_level = any(len(i["loc"]) >= 2 and i["loc"][0] == "streams" for i in items)
    for item in items:
        if stream_level and tuple(item["loc"]) == ("streams",) and item["type"] == "too_short":
            continue  # pydantic's echo of the invalid entries above, not a separate problem
        loc = list(item["loc"])
        # A consumer's error names its entry and field, not the union tag pydantic adds for its kind.
        if len(loc) >= 6 and loc[2] == "consumers" and loc[4] in CONSUMER_KINDS:
            del loc[4]
        stream = None
        if len(loc) >= 2 and loc[0] == "streams" and isinstance(loc[1], int):
            stream = _stream_label(raw, loc[1])
            loc = loc[2:]
        field = ".".join(str(part) for part in loc) or None
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = moved_key_hint(tuple(loc)) or message
        if item["type"] in (
            "literal_error",
            "enum",
            "string_pattern_mismatch",
            "greater_than_equal",
            "less_than_equal",
            "greater_than",
            "less_than",
            "int_parsing",
            "float_parsing",
        ):
            message = f"{message} (got {item.get('input')!r})"
        errors.append(PolicyError(file=file, stream=stream, field=field, message=message))
    return errors


def load_document(path: Path) -> tuple[PolicyDocumentBase | None, list[PolicyError]]:
    file = str(path)
    if not path.is_file():
        return None, [PolicyError(file, None, None, "no such policy file")]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [PolicyError(file, None, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")]
    if not isinstance(raw, dict):
        return None, [PolicyError(file, None, None, "expected a mapping with 'version' and 'streams'")]
    try:
        return REGISTRY.parse_policy_document(raw), []
    except ValidationError as exc:
        return None, _errors_from_validation(file, raw, exc)


def load_policies(paths: Iterable[str | Path]) -> PolicySet:
    """Load and validate every policy file; raise PolicyValidationError listing all errors at once."""
    paths = list(paths)
    files = policy_paths(paths)
    if not files:
        raise NoPolicyFiles([PolicyError(", ".join(map(str, paths)) or "(none)", None, None, NO_POLICY_FILES)])
    errors: list[PolicyError] = []
    streams: dict[str, StreamPolicy] = {}
    sources: dict[str, str] = {}
    for path in files:
        document, file_errors = load_document(path)
        errors.extend(file_errors)
        for stream in document.streams if document else ():
            if stream.name in sources:
                errors.append(PolicyError(str(path), stream.name, "name", f"also defined in {sources[stream.name]}"))
                continue
            streams[stream.name] = stream
            sources[stream.name] = str(path)
    if errors:
        raise PolicyValidationError(errors)
    return PolicySet(streams=streams, sources=sources)
