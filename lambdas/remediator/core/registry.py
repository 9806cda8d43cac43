"""The registry: the one list of symptoms and actions, from which everything else is derived.

Plugins register themselves in one line (`@REGISTRY.symptom`, `@REGISTRY.action`). From the registered
plugins the registry builds the policy model (a `detectors` and an `actions` block per plugin), and the
stack, the CLI, the e-mails and the remediator read the plugins through it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, Field, create_model

from remediator.core.policy import (
    ActionPolicy,
    DetectorPolicy,
    PolicyDocumentBase,
    StreamPolicy,
    Strict,
    field_name,
)

if TYPE_CHECKING:
    from remediator.core.actions.base import Action
    from remediator.core.symptoms.base import Symptom

PLUGIN_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
BUILTIN_PACKAGES = ("remediator.core.symptoms", "remediator.core.actions")
MAX_EVIDENCE_WINDOW_MINUTES = 24 * 60

T = TypeVar("T", bound=type)


class PluginError(TypeError):
    """A plugin that does not keep the contract; raised when it registers, so it never half-works."""


def import_plugins(package: str, path: Iterable[str]) -> None:
    """Import every public module of a plugin package, so that each registers itself."""
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def _has_defaults(schema: type[BaseModel]) -> bool:
    return not any(info.is_required() for info in schema.model_fields.values())


class _Models:
    """The policy models for one set of plugins (rebuilt whenever the set changes)."""

    def __init__(self, symptoms: Iterable[Symptom[Any]], actions: Iterable[Action[Any]]) -> None:
        self.symptoms, self.actions = tuple(symptoms), tuple(actions)

    @cached_property
    def stream_policy(self) -> type[StreamPolicy]:
        detector_fields: dict[str, Any] = {
            field_name(s.id): (
                s.detector_schema,
                Field(default_factory=s.detector_schema, description=f"{s.title} ({s.id})"),
            )
            for s in self.symptoms
        }
        detectors: Any = create_model(
            "Detectors", __base__=Strict, __doc__="One block per registered symptom.", **detector_fields
        )
        action_fields: dict[str, Any] = {}
        for a in self.actions:
            default: Any = ... if not _has_defaults(a.policy_schema) else Field(default_factory=a.policy_schema)
            action_fields[field_name(a.id)] = (a.policy_schema, default)
        actions: Any = create_model(
            "Actions", __base__=Strict, __doc__="One block per registered action.", **action_fields
        )
        required = any(not _has_defaults(a.policy_schema) for a in self.actions)
        model = create_model(
            "StreamPolicy",
            __base__=StreamPolicy,
            detectors=(detectors, Field(default_factory=detectors)),
            actions=(actions, ... if required else Field(default_factory=actions)),
        )
        return cast(type[StreamPolicy], model)

    @cached_property
    def policy_document(self) -> type[PolicyDocumentBase]:
        model = create_model(
            "PolicyDocument",
            __base__=PolicyDocumentBase,
            streams=(tuple[self.stream_policy, ...], Field(..., min_length=1)),  # type: ignore[name-defined]
        )
        return cast(type[PolicyDocumentBase], model)


class Registry:
    def __init__(self, builtin_packages: tuple[str, ...] = BUILTIN_PACKAGES) -> None:
        self._symptoms: dict[str, Symptom[Any]] = {}
        self._actions: dict[str, Action[Any]] = {}
        self._builtin_packages = builtin_packages
        self._loaded = False
        self._models: _Models | None = None

    # --- registration -----------------------------------------------------------------------------

    def symptom(self, cls: T) -> T:
        """Class decorator: register a symptom (one instance of `cls`)."""
        from remediator.core.symptoms.base import Symptom

        self._add(self._symptoms, cls, Symptom, "symptom")
        return cls

    def action(self, cls: T) -> T:
        """Class decorator: register an action (one instance of `cls`)."""
        from remediator.core.actions.base import Action

        self._add(self._actions, cls, Action, "action")
        return cls

    @contextmanager
    def registered(self, *classes: type) -> Iterator[None]:
        """Register plugins for the duration of a block (tests, and tools that bring their own)."""
        self._load_builtins()
        from remediator.core.actions.base import Action

        added: list[tuple[dict[str, Any], str]] = []
        try:
            for cls in classes:
                table: dict[str, Any] = self._actions if issubclass(cls, Action) else self._symptoms
                taken = table.get(str(getattr(cls, "id", "")))
                if taken is not None:
                    # Leaving the block must never remove a plugin it did not add.
                    owner = f"{type(taken).__module__}.{type(taken).__qualname__}"
                    raise PluginError(f"{cls.__qualname__}: id '{cls.id}' is already taken by {owner}")  # type: ignore[attr-defined]
                (self.action if table is self._actions else self.symptom)(cls)
                added.append((table, cls.id))  # type: ignore[attr-defined]
            yield
        finally:
            for table, plugin_id in added:
                table.pop(plugin_id, None)
            self._models = None

    def _add(self, table: dict[str, Any], cls: type, base: type, kind: str) -> None:
        plugin_id = getattr(cls, "id", None)
        where = f"{kind} {cls.__module__}.{cls.__qualname__}"
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise PluginError(f"{where} is not a {base.__name__}")
        if inspect.isabstract(cls):
            raise PluginError(f"{where} leaves {sorted(getattr(cls, '__abstractmethods__', ()))} abstract")
        if not isinstance(plugin_id, str) or not PLUGIN_ID.fullmatch(plugin_id):
            raise PluginError(f"{where}: id {plugin_id!r} must be kebab-case, like 'iterator-age'")
        self._check_declarations(cls, kind, where)
        existing = type(table[plugin_id]) if plugin_id in table else None
        if existing is cls:
            return
        if existing is not None:
            raise PluginError(
                f"{where}: id '{plugin_id}' is already taken by {existing.__module__}.{existing.__qualname__}"
            )
        table[plugin_id] = cls()
        self._models = None

    @staticmethod
    def _check_declarations(cls: type, kind: str, where: str) -> None:
        if kind == "symptom":
            schema = getattr(cls, "detector_schema", None)
            if not (inspect.isclass(schema) and issubclass(schema, DetectorPolicy)):
                raise PluginError(f"{where}: detector_schema must be a DetectorPolicy subclass")
            if not _has_defaults(schema):
                raise PluginError(f"{where}: every field of {schema.__name__} needs a documented default")
            missing = [name for name in ("title", "meaning") if not str(getattr(cls, name, "")).strip()]
            window = getattr(cls, "evidence_window_minutes", None)
            # One-minute datapoints: CloudWatch keeps them 15 days; a day of them is plenty for any diagnosis.
            if not isinstance(window, int) or not 1 <= window <= MAX_EVIDENCE_WINDOW_MINUTES:
                raise PluginError(
                    f"{where}: evidence_window_minutes must be a whole number of minutes from 1 to "
                    f"{MAX_EVIDENCE_WINDOW_MINUTES}, got {window!r}"
                )
        else:
            schema = getattr(cls, "policy_schema", None)
            if not (inspect.isclass(schema) and issubclass(schema, ActionPolicy)):
                raise PluginError(f"{where}: policy_schema must be an ActionPolicy subclass")
            missing = [name for name in ("title",) if not str(getattr(cls, name, "")).strip()]
            if not getattr(cls, "grants", ()):
                missing.append("grants")
            if not isinstance(getattr(cls, "sample_parameters", None), dict):
                missing.append("sample_parameters")
        undocumented = [name for name, info in schema.model_fields.items() if not info.description]
        if undocumented:
            raise PluginError(f"{where}: {schema.__name__} fields without a description: {undocumented}")
        if missing:
            raise PluginError(f"{where}: missing {', '.join(missing)}")

    # --- lookups ----------------------------------------------------------------------------------

    def _load_builtins(self) -> None:
        # Loaded once; a plugin that fails to import fails every lookup, never leaves a partial registry.
        if not self._loaded:
            for package in self._builtin_packages:
                importlib.import_module(package)
            self._loaded = True

    @property
    def symptoms(self) -> Mapping[str, Symptom[Any]]:
        self._load_builtins()
        return MappingProxyType(self._symptoms)

    @property
    def actions(self) -> Mapping[str, Action[Any]]:
        self._load_builtins()
        return MappingProxyType(self._actions)

    def _current_models(self) -> _Models:
        self._load_builtins()
        if self._models is None:
            self._models = _Models(self._symptoms.values(), self._actions.values())
        return self._models

    def stream_policy_model(self) -> type[StreamPolicy]:
        return self._current_models().stream_policy

    def policy_document_model(self) -> type[PolicyDocumentBase]:
        return self._current_models().policy_document

    def parse_stream_policy(self, raw: Any) -> StreamPolicy:
        """Validate one stream's policy against the registered plugins (raises pydantic's ValidationError)."""
        return self.stream_policy_model().model_validate(raw)

    def parse_stream_policy_json(self, text: str) -> StreamPolicy:
        """Validate one stream's policy given as JSON, strictly: a value of the wrong JSON type ("16" for 16,
        "true" for true) is an error, never converted. Enums by their value and arrays for lists are JSON's own,
        so the stack's own JSON (model_dump(mode="json")) always passes."""
        return self.stream_policy_model().model_validate_json(text, strict=True)

    def parse_policy_document(self, raw: Any) -> PolicyDocumentBase:
        return self.policy_document_model().model_validate(raw)


REGISTRY = Registry()
