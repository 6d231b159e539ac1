"""Plugins: action modules from outside rolechain, imported once at start by the CLI and the handlers.

A plugin is a module whose import registers actions with :func:`rolechain.actions.register`, exactly
as a built-in does (so it gets the same session policy, dry-run guard and ``rolechain policy target``
treatment). Two ways to name one:

* an entry point of the group ``rolechain.actions`` in an installed distribution, naming a module
  (``marker = "acme_rolechain.actions"``): how a pip-installed package reaches the CLI;
* ``ROLECHAIN_PLUGINS``, comma-separated module names: how a Lambda deployment names its own (modules
  in a layer of their own, or in the rolechain layer's requirements).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from rolechain.actions.base import REGISTRY, one_line
from rolechain.chain import config_error
from rolechain.errors import ConfigError, PluginError

ENTRY_POINT_GROUP = "rolechain.actions"
ENV_VAR = "ROLECHAIN_PLUGINS"
MODULE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_MODULE_NAME = 200


def _module_name(value: str) -> str:
    if len(value) > MAX_MODULE_NAME or not MODULE_NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r} is not a module name (dotted Python identifiers, e.g. acme.rolechain_actions)"
        )
    return value


ModuleName = Annotated[str, AfterValidator(_module_name)]


class PluginSettings(BaseModel):
    """``ROLECHAIN_PLUGINS`` parsed: module names, comma-separated (blanks around a name are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    modules: tuple[ModuleName, ...] = Field(default=(), alias=ENV_VAR)

    @field_validator("modules", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PluginSettings:
        """Raises PluginError naming ``ROLECHAIN_PLUGINS`` and the first bad module name."""
        try:
            return cls.model_validate({ENV_VAR: env.get(ENV_VAR, "")})
        except ValidationError as exc:
            error = config_error(exc)
            raise PluginError(error.field, error.rule) from exc


@dataclass(frozen=True)
class PluginSource:
    """A plugin module and how it was named (for errors)."""

    module: str
    origin: str

    def __str__(self) -> str:
        return f"{self.module} ({self.origin})"


# Modules the loader imported in this process: a second call imports only what is new.
_LOADED: set[str] = set()


def plugin_sources(env: Mapping[str, str]) -> list[PluginSource]:
    """The plugin modules named by the ``rolechain.actions`` entry points, then by ``ROLECHAIN_PLUGINS``,
    each once. Raises PluginError for a bad ``ROLECHAIN_PLUGINS`` or an entry point naming no module."""
    named = PluginSettings.from_env(env).modules  # validated before anything is imported
    sources = [_entry_point_source(ep) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    sources += [PluginSource(module, ENV_VAR) for module in named]
    unique: dict[str, PluginSource] = {}
    for source in sources:
        unique.setdefault(source.module, source)
    return list(unique.values())


def _entry_point_source(ep: EntryPoint) -> PluginSource:
    dist = f" of {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
    origin = f"entry point {ep.name!r}{dist}"
    if ep.attr:
        raise PluginError(
            f"plugin {ep.value} ({origin})", "an entry point of rolechain.actions names a module, not an object"
        )
    try:
        return PluginSource(_module_name(ep.module), origin)
    except ValueError as exc:
        raise PluginError(f"plugin {ep.value} ({origin})", str(exc)) from exc


def load_plugins(environ: Mapping[str, str] | None = None) -> list[str]:
    """Import every plugin module (see :func:`plugin_sources`; ``environ`` defaults to ``os.environ``)
    not imported yet, which registers its actions. Idempotent: call it once at start.

    Returns the plugin modules named, loaded now or by an earlier call. Raises PluginError naming the
    plugin, how it was named and the cause: a bad module name, an import that fails, or an action name
    already registered (the error names both modules). A failed plugin leaves no action registered.
    """
    sources = plugin_sources(os.environ if environ is None else environ)
    for source in sources:
        if source.module not in _LOADED:
            _import(source)
            _LOADED.add(source.module)
    return [source.module for source in sources]


def _import(source: PluginSource) -> None:
    before = set(REGISTRY)
    try:
        importlib.import_module(source.module)
    except Exception as exc:
        # All or nothing, so that a retry reports the same cause: forget what the plugin registered, and
        # the modules that registered it (a plugin's submodule imported before the failure, say).
        for name in set(REGISTRY) - before:
            sys.modules.pop(REGISTRY.pop(name).module, None)
        if isinstance(exc, ConfigError):  # a name registered twice, a bad action name...
            raise PluginError(f"plugin {source}", f"{exc.field}: {exc.rule}") from exc
        raise PluginError(f"plugin {source}", f"import failed: {type(exc).__name__}: {one_line(exc)}") from exc
