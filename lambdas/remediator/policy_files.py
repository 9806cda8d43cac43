"""Reading policy files from disk: YAML -> validated PolicySet, or every error with file, stream and field.

Used by the CLI and the CDK app; the Lambda receives policies already validated (as JSON in SSM).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.fleet import fleet_warnings
from remediator.core.policy import CONSUMER_KINDS, PolicyDocumentBase, StreamPolicy, moved_key_hint, stream_key
from remediator.core.registry import REGISTRY

POLICY_SUFFIXES = (".yaml", ".yml")


# ---- strict YAML ------------------------------------------------------------------------------------
# Policies are plain data: mappings, lists, text, numbers, true/false. Anything YAML can do beyond that is
# refused before a value is built (a tag is never constructed), with the line it is on.
STANDARD_TAG = "tag:yaml.org,2002:"
PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class _Problem:
    path: Path_
    line: int
    message: str


class _StrictComposer(yaml.SafeLoader):
    """Composes the node tree only, noting every anchor, alias and explicit tag (nothing is constructed)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        # [node, line, what] in document order; the node is filled in once composed.
        self.policy_marks: list[list[Any]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        found: list[list[Any]] = []
        if isinstance(event, yaml.AliasEvent):
            found.append([None, line, f"alias *{event.anchor}"])
        else:
            if getattr(event, "anchor", None) is not None:
                found.append([None, line, f"anchor &{event.anchor}"])
            tag = getattr(event, "tag", None)
            if tag is not None and tag != "!":
                written = f"!!{tag.removeprefix(STANDARD_TAG)}" if tag.startswith(STANDARD_TAG) else tag
                found.append([None, line, f"tag {written}"])
        self.policy_marks.extend(found)
        node = super().compose_node(parent, index)
        for mark in found:
            mark[0] = node
        return node


def _alias_or_tag_message(what: str) -> str:
    if what.startswith("tag "):
        return (
            f"YAML tags are not allowed in a policy ({what.removeprefix('tag ')}): "
            "write plain values (text, numbers, true/false); nothing in a policy is built from a tag"
        )
    return (
        f"anchors and aliases are not allowed in a policy ({what}): write each stream's settings in full, "
        "so that what a stream does is read in its own block"
    )


@dataclass
class _Document:
    """A YAML document as plain data, with where each value is and the text each scalar was written as."""

    data: Any = None
    lines: dict[Path_, int] = field(default_factory=dict)
    texts: dict[Path_, str] = field(default_factory=dict)
    quoted: set[Path_] = field(default_factory=set)
    problems: list[_Problem] = field(default_factory=list)
    # The composer's anchors, aliases and tags, met again in the same order as the tree is walked.
    pending: list[list[Any]] = field(default_factory=list)

    def _marked(self, node: yaml.Node, path: Path_) -> bool:
        """Report the anchors, aliases and tags written at `node` (here, at `path`); whether there were any."""
        marked = False
        while self.pending and self.pending[0][0] is node:
            if self.pending[0][2].startswith("alias ") and marked:
                break  # an alias of this node, met later where the alias is written
            _, line, what = self.pending.pop(0)
            self.problems.append(_Problem(path, line, _alias_or_tag_message(what)))
            marked = True
            if what.startswith("alias "):
                break
        return marked

    def path_on(self, line: int) -> Path_:
        """The outermost key or value that starts on `line` (where an anchor, alias or tag was written)."""
        on_line = [path for path, at in self.lines.items() if at == line]
        return min(on_line, key=len, default=())

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest value along `loc` that the document has (a missing key: its block)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def build(self, loader: yaml.SafeLoader, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        marked = self._marked(node, path)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                self._marked(key_node, path)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.lines.setdefault((*path, "<<"), line)
                    self.problems.append(
                        _Problem(
                            (*path, "<<"),
                            line,
                            "merge keys (<<) are not allowed in a policy: write the stream's settings in full, "
                            "so that no block is changed from elsewhere in the file",
                        )
                    )
                    self.build(loader, value_node, (*path, "<<"))  # walked for its own marks, never merged
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    self.problems.append(_Problem(path, line, f"a key must be a name, got {key_node.value!r}"))
                    self.build(loader, value_node, (*path, str(key_node.value)))
                    continue
                key = str(key_node.value)
                if key in result:
                    self.problems.append(
                        _Problem(
                            (*path, key),
                            line,
                            f"given twice in one block (first on line {self.lines[(*path, key)]}): "
                            "keep one; a repeated key is never read as 'the last one wins'",
                        )
                    )
                    self.build(loader, value_node, (*path, key))
                    continue
                self.lines[(*path, key)] = line
                result[key] = self.build(loader, value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(loader, item, (*path, i)) for i, item in enumerate(node.value)]
        self.texts[path] = str(node.value)
        if getattr(node, "style", None) in ("'", '"'):
            self.quoted.add(path)
        if marked:
            return None  # a tagged value is never constructed (nor an alias, already reported)
        if node.tag == "tag:yaml.org,2002:timestamp":
            self.problems.append(
                _Problem(path, node.start_mark.line + 1, f"{node.value} is read as a date: no setting is a date")
            )
            return None
        if node.tag not in PLAIN_TAGS:
            self.problems.append(_Problem(path, node.start_mark.line + 1, f"{node.value!r} is not a plain value"))
            return None
        return loader.construct_object(node, deep=True)


def _read_yaml(text: str) -> _Document:
    """Parse policy YAML strictly (raises yaml.YAMLError on a syntax error)."""
    loader = _StrictComposer(text)
    try:
        node = loader.get_single_node()
        document = _Document(pending=list(loader.policy_marks))
        if node is not None:
            # Building never constructs a tagged value (see build), so the tree is safe to walk.
            document.data = document.build(loader, node, ())
        for _, line, what in document.pending:  # none expected: the walk meets every node; kept as a backstop
            document.problems.append(_Problem(document.path_on(line), line, _alias_or_tag_message(what)))
        document.problems.sort(key=lambda p: p.line)
        return document
    finally:
        loader.dispose()


@dataclass(frozen=True)
class PolicyError:
    file: str
    stream: str | None
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = [self.file if self.line is None else f"{self.file}:{self.line}"]
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
    """All streams under protection, each with the file it came from, and what is valid but worth a look."""

    # Keyed by the policy's key (core.policy.stream_key): the stream's name for a hub-local stream, else
    # `<account>/<region>/<name>` ('-' for a part left out), so one name may be listed once per account and region.
    streams: Mapping[str, StreamPolicy]
    sources: Mapping[str, str]
    warnings: tuple[PolicyError, ...] = ()

    def get(self, stream: str, account: str | None = None, region: str | None = None) -> StreamPolicy | None:
        """The policy of `stream` in `account`/`region` as the policy writes them (None: left out, the hub's)."""
        return self.streams.get(stream_key(stream, account, region))

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


def _stream_label(raw: Any, index: int, texts: Mapping[Path_, str] | None = None) -> str:
    try:
        name = raw["streams"][index]["name"]
        if isinstance(name, str) and name:
            return name
    except (KeyError, IndexError, TypeError):
        pass
    # A name of the wrong type (`name: yes`) is still the stream the user means: label it as written.
    written = (texts or {}).get(("streams", index, "name"))
    return written or f"#{index + 1}"


def _where(document: _Document, loc: Sequence[str | int]) -> tuple[str | None, str | None]:
    """(stream label, dotted field within the stream or document) of a location in a policy document."""
    stream = None
    if len(loc) >= 2 and loc[0] == "streams" and isinstance(loc[1], int):
        stream = _stream_label(document.data, loc[1], document.texts)
        loc = loc[2:]
    return stream, ".".join(str(part) for part in loc) or None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Annotated, unions, Optional and tuples)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a block at `loc` (a pydantic location, without union tags) accepts."""
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a tuple: _models_in already looked inside it
        found = [m.model_fields[part].annotation for m in models if part in m.model_fields]
        models = [inner for annotation in found for inner in _models_in(annotation)]
    return sorted({name for m in models for name in m.model_fields})


def _unknown_key(loc: Sequence[str | int], model: type[BaseModel]) -> str:
    key = str(loc[-1])
    known = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}': did you mean {close[0]}?"
    return f"unknown key '{key}': the keys here are {', '.join(known)}" if known else f"unknown key '{key}'"


def _scalar(text: str | None, value: Any) -> str:
    # Text is shown quoted, as the user wrote it; other values as written (`yes`, `12345`).
    return json.dumps(value) if isinstance(value, str) or text is None else text


# pydantic's strict type errors, said in words, with the YAML the user wrote.
TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "model_type": "must be a block of settings (`key: value` lines, indented below it)",
    "dict_type": "must be a block of settings (`key: value` lines, indented below it)",
    "tuple_type": "must be a list (`- item` lines, or [a, b])",
    "list_type": "must be a list (`- item` lines, or [a, b])",
}


def _type_message(kind: str, value: Any, text: str | None, quoted: bool) -> str:
    written = _scalar(text, value)
    message = f"{TYPE_MESSAGES[kind]}, got {written}"
    if quoted and kind in ("int_type", "float_type", "bool_type"):
        return f"{message} (quoted, so YAML reads it as text): write it without quotes"
    if kind == "string_type" and isinstance(value, bool):
        return f"{message}, which YAML reads as {str(value).lower()}: put it in quotes ('{written}') if it is a name"
    if kind == "string_type" and isinstance(value, int | float):
        return f"{message}, which YAML reads as a number: put it in quotes ('{written}') if it is a name"
    if value is None:
        return f"{TYPE_MESSAGES[kind]}, got nothing"
    return message


NO_STREAMS = (
    "no stream to protect (an empty list never means every stream): list each stream under `streams:` "
    "as `- name: <stream>` with its `actions: {reshard: {max_shards: <most shards it may have>}}`"
)

WITH_INPUT = (
    "literal_error",
    "enum",
    "string_pattern_mismatch",
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "int_parsing",
    "float_parsing",
)


def _errors_from_validation(
    file: str, document: _Document, error: ValidationError, model: type[BaseModel]
) -> list[PolicyError]:
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
        stream, field_ = _where(document, loc)
        kind = item["type"]
        message = item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = moved_key_hint(tuple(loc[2:] if stream is not None else loc)) or _unknown_key(loc, model)
        elif kind in TYPE_MESSAGES:
            message = _type_message(
                kind, item.get("input"), document.texts.get(tuple(loc)), tuple(loc) in document.quoted
            )
        elif tuple(loc) == ("streams",) and kind in ("too_short", "tuple_type", "missing"):
            message = NO_STREAMS
        elif kind in WITH_INPUT:
            message = f"{message} (got {item.get('input')!r})"
        elif kind == "missing":
            message = "required: this key has no default, write it"
        # A whole-document check (a stream listed twice) has no one line.
        errors.append(PolicyError(file, stream, field_, message, document.line_of(loc) if loc else None))
    return errors


def _warnings(file: str, document: _Document, policy: PolicyDocumentBase) -> list[PolicyError]:
    """What is valid but probably not meant: a stream whose plans and reports reach nobody."""
    return [
        PolicyError(
            file,
            stream.name,
            "notify.emails",
            "no e-mail address: this stream's plans and reports reach nobody; add "
            "`notify: {emails: [you@example.com]}`",
            document.line_of(("streams", index, "notify", "emails")),
        )
        for index, stream in enumerate(policy.streams)
        if not stream.notify.emails
    ]


def read_document(path: Path) -> tuple[PolicyDocumentBase | None, list[PolicyError], list[PolicyError]]:
    """One policy file: (the document or None, its errors, its warnings)."""
    file = str(path)
    if not path.is_file():
        return None, [PolicyError(file, None, None, "no such policy file")], []
    try:
        document = _read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [PolicyError(file, None, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")], []
    if document.problems:
        # Refused before validation: a policy with a repeated key or a tag has no single meaning to check.
        return (
            None,
            [
                PolicyError(file, *_where(document, problem.path), problem.message, problem.line)
                for problem in document.problems
            ],
            [],
        )
    if not isinstance(document.data, dict):
        return None, [PolicyError(file, None, None, "expected a mapping with 'version' and 'streams'")], []
    model = REGISTRY.policy_document_model()
    try:
        # Strict, through JSON: a YAML value of the wrong type ("16", yes, 12345) is an error, never converted;
        # JSON keeps YAML's types (text, whole number, number, true/false) and names enums by their value.
        policy = model.model_validate_json(json.dumps(document.data), strict=True)
    except ValidationError as exc:
        return None, _errors_from_validation(file, document, exc, model), []
    return policy, [], _warnings(file, document, policy)


def load_document(path: Path) -> tuple[PolicyDocumentBase | None, list[PolicyError]]:
    document, errors, _ = read_document(path)
    return document, errors


def load_policies(paths: Iterable[str | Path]) -> PolicySet:
    """Load and validate every policy file; raise PolicyValidationError listing all errors at once."""
    paths = list(paths)
    files = policy_paths(paths)
    if not files:
        raise NoPolicyFiles([PolicyError(", ".join(map(str, paths)) or "(none)", None, None, NO_POLICY_FILES)])
    errors: list[PolicyError] = []
    warnings: list[PolicyError] = []
    streams: dict[str, StreamPolicy] = {}
    sources: dict[str, str] = {}
    for path in files:
        document, file_errors, file_warnings = read_document(path)
        errors.extend(file_errors)
        warnings.extend(file_warnings)
        for stream in document.streams if document else ():
            # One stream is (account, region, name): the same name in two accounts is two streams.
            key = stream.key
            if key in sources:
                where = "" if key == stream.name else f" (account {stream.account}, region {stream.region})"
                errors.append(PolicyError(str(path), stream.name, "name", f"also defined{where} in {sources[key]}"))
                continue
            streams[key] = stream
            sources[key] = str(path)
    if errors:
        raise PolicyValidationError(errors)
    # Streams on fleet alarms: which of their alarms stay per-stream, and the region's Metrics Insights quota.
    for concerned, named, field_, message in fleet_warnings(streams, DEFAULT_ALARM_PREFIX):
        where = ", ".join(dict.fromkeys(sources[name] for name in concerned))
        warnings.append(PolicyError(where, named, field_, message))
    return PolicySet(streams=streams, sources=sources, warnings=tuple(warnings))
