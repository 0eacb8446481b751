"""Registries of pluggable components: a new objective, model, likelihood, dataset or evaluator is
one new file holding one frozen dataclass.

An entry owns its schema: its fields and defaults (one place), range checks in `__post_init__`
that raise ConfigError naming the valid values, `build(...)` and `label()`. Registering it also
stores the schema in Hydra's ConfigStore under the registry's group, with a `name` field added,
so `objective=miwae objective.m=4` composes and type-checks with no central `if` chain, and a
run's config holds only the chosen entry's fields.

    @objectives.REGISTRY.register("iwae")
    @dataclass(frozen=True)
    class IWAE:
        k: int = 5
        def __post_init__(self): check(self.k >= 1, "objective.k must be >= 1, got ...")
        def build(self, model): ...
        def label(self): return f"IWAE(k={self.k})"

Users register entries from their own modules (see `load_plugins`): importing the module runs
the decorator, exactly as for the built-in entries.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from elbo_lab.errors import ConfigError

PLUGIN_GROUP = "elbo_lab.plugins"  # entry-point group: modules imported at start-up


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless ok."""
    if not ok:
        raise ConfigError(message)


def close_match(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices`, or ''."""
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {found[0]!r}?)" if found else ""


class Registry:
    """Named component schemas of one kind, e.g. Registry("objective")."""

    def __init__(self, group: str):
        self.group = group
        self._entries: dict[str, type] = {}
        self._nodes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator: register a frozen dataclass under `name` (and in Hydra's store)."""

        def decorate(cls: type) -> type:
            if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
                raise TypeError(f"{cls.__name__}: a {self.group} entry must be a frozen dataclass")
            for member in ("build", "label"):
                if not callable(getattr(cls, member, None)):
                    raise TypeError(f"{cls.__name__}: a {self.group} entry needs `{member}`")
            if "name" in {f.name for f in dataclasses.fields(cls)}:
                raise TypeError(f"{cls.__name__}: `name` is the registry's field, not the entry's")
            node = dataclasses.make_dataclass(
                f"{cls.__name__}Config",
                [("name", str, dataclasses.field(default=name))],
                bases=(cls,),
                frozen=True,
            )
            self._entries[name] = cls
            self._nodes[name] = node
            cls.registry_name = name
            # Stored writable, so presets and overrides can merge into it.
            ConfigStore.instance().store(group=self.group, name=name, node=structured(node))
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type:
        """The entry registered under `name`; an unknown name lists the registered ones."""
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.group} {name!r}{close_match(str(name), self._entries)}; "
                f"registered: {', '.join(self.names())} ({self.group}=<name>)"
            )
        return self._entries[name]

    def fields(self, name: str) -> list[str]:
        return [f.name for f in dataclasses.fields(self.get(name))]

    def from_config(self, node: Mapping[str, Any] | None, where: str | None = None):
        """The entry instance a config node {"name": ..., field: value, ...} describes.

        Types are checked and coerced by OmegaConf against the schema; a field the entry lacks
        is a ConfigError listing the fields it has; range checks run in its __post_init__.
        """
        where = where or self.group
        if node is None or "name" not in node:
            raise ConfigError(f"{where} needs a name; registered: {', '.join(self.names())}")
        values = dict(
            OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        )
        name = values.pop("name")
        cls = self.get(name)
        known = self.fields(name)
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{self.group} {name!r} has no field {key!r}{close_match(key, known)}; its "
                    f"fields: {', '.join(known) or '(none)'}"
                )
        try:
            typed = OmegaConf.merge(structured(self._nodes[name]), values)
            values = OmegaConf.to_container(typed, resolve=True, structured_config_mode=None)
        except OmegaConfBaseException as e:
            key = getattr(e, "full_key", None) or getattr(e, "key", None)
            raise ConfigError(f"invalid {where}.{key}: {str(e.msg).splitlines()[0]}") from None
        values.pop("name")
        return cls(**{k: _plain(v) for k, v in values.items()})

    def to_dict(self, entry) -> dict[str, Any]:
        """{"name": ..., **fields} of an entry instance: JSON-ready (enums as their values)."""
        return {"name": type(entry).registry_name, **_jsonable(dataclasses.asdict(entry))}


def structured(schema: type):
    """OmegaConf.structured(schema), writable: a frozen dataclass makes read-only nodes at every
    level, and merging a preset or an override into one needs them writable."""

    def writable(node):
        OmegaConf.set_readonly(node, False)
        if OmegaConf.is_dict(node):
            for key in node:
                child = node._get_node(key)
                if OmegaConf.is_config(child):
                    writable(child)
        return node

    return writable(OmegaConf.structured(schema))


def _plain(v):
    """Lists and dicts from OmegaConf as tuples (frozen entries stay hashable)."""
    if isinstance(v, list):
        return tuple(_plain(x) for x in v)
    return v


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    return v


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import the modules named (e.g. from `plugins=[mylab.components]`) and every module of the
    `elbo_lab.plugins` entry-point group, so their registrations run."""
    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(
                f"plugin module {module!r} could not be imported ({e}); it must be importable "
                "from this Python (installed, or on PYTHONPATH)"
            ) from None
