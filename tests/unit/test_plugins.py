"""Issue #9 item 4: the action registry opens to plugins (rolechain.actions.plugins.load_plugins).

Plugins here are throwaway ``acme_*`` modules written to ``tmp_path``; a distribution with a
``rolechain.actions`` entry point is a ``*.dist-info`` folder beside them, as pip would leave it."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rolechain import cli
from rolechain.actions import ActionContext, Params, register
from rolechain.actions.plugins import load_plugins
from rolechain.errors import ConfigError, PluginError

from tests.integration.support import run_process
from tests.plugin_support import PLUGIN_ACTION, PLUGIN_MODULE, write_plugin_module

pytestmark = pytest.mark.usefixtures("isolated_registry")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for the test's plugin modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write_module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


def action_module(name: str, action: str) -> str:
    """Source of a plugin module registering ``action`` (the way a plugin does: from rolechain.actions)."""
    return textwrap.dedent(f'''
        from rolechain.actions import ActionContext, Params, register

        class P(Params):
            pass

        @register("{action}", params=P, iam_actions=["sts:GetCallerIdentity"], changes=False)
        def run(ctx: ActionContext, params: P) -> dict:
            """{name}'s {action}."""
            return {{}}
    ''')


def write_distribution(directory: Path, entry_points: str, name: str = "acme-tools") -> None:
    """An installed distribution as pip leaves it: ``<name>-<version>.dist-info`` with METADATA and
    entry_points.txt."""
    info = directory / f"{name.replace('-', '_')}-1.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


# -- ROLECHAIN_PLUGINS --------------------------------------------------------------------------------
def test_env_var_modules_are_imported_and_register_their_actions(
    plugin_dir: Path, isolated_registry: dict[str, Any]
) -> None:
    write_plugin_module(plugin_dir)
    write_module(plugin_dir, "acme_two", action_module("acme_two", "acme_probe"))

    loaded = load_plugins({"ROLECHAIN_PLUGINS": f" {PLUGIN_MODULE} , acme_two,"})

    assert loaded == [PLUGIN_MODULE, "acme_two"]
    marker = isolated_registry[PLUGIN_ACTION]
    assert (marker.module, marker.changes) == (PLUGIN_MODULE, True)
    assert marker.iam_actions == ("ssm:GetParameter", "ssm:PutParameter")  # sorted, as for a built-in
    assert marker.description == "Write ``value`` to the SSM parameter ``name`` of the target account."
    assert isolated_registry["acme_probe"].module == "acme_two"


def test_load_plugins_is_idempotent(plugin_dir: Path, isolated_registry: dict[str, Any]) -> None:
    write_plugin_module(plugin_dir)
    env = {"ROLECHAIN_PLUGINS": PLUGIN_MODULE}
    load_plugins(env)
    module = sys.modules[PLUGIN_MODULE]

    assert load_plugins(env) == [PLUGIN_MODULE]  # no "registered twice"
    assert sys.modules[PLUGIN_MODULE] is module
    assert [n for n, a in isolated_registry.items() if a.module == PLUGIN_MODULE] == [PLUGIN_ACTION]


def test_no_plugins_named_loads_nothing(isolated_registry: dict[str, Any]) -> None:
    before = dict(isolated_registry)

    assert load_plugins({"ROLECHAIN_PLUGINS": " , "}) == []
    assert load_plugins({}) == []
    assert isolated_registry == before


def test_environ_defaults_to_the_process_environment(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin_module(plugin_dir)
    monkeypatch.setenv("ROLECHAIN_PLUGINS", PLUGIN_MODULE)

    assert load_plugins() == [PLUGIN_MODULE]


@pytest.mark.parametrize(
    "name",
    ["acme-marker", "acme..marker", ".acme", "acme.", "acme marker", "1acme", "acme/marker", "\uff41cme", "a" * 201],
)
def test_a_bad_module_name_is_refused_before_anything_is_imported(plugin_dir: Path, name: str) -> None:
    write_plugin_module(plugin_dir)

    with pytest.raises(PluginError) as caught:
        load_plugins({"ROLECHAIN_PLUGINS": f"{PLUGIN_MODULE},{name}"})

    assert caught.value.field == "ROLECHAIN_PLUGINS[1]"
    assert caught.value.rule.startswith(f"{name[:80]!r} is not a module name (dotted Python identifiers")
    assert PLUGIN_MODULE not in sys.modules  # the good one listed first was not imported either


# -- entry points -------------------------------------------------------------------------------------
def test_entry_points_of_installed_distributions_are_loaded(
    plugin_dir: Path, isolated_registry: dict[str, Any]
) -> None:
    write_plugin_module(plugin_dir)
    write_module(plugin_dir, "acme_two", action_module("acme_two", "acme_probe"))
    write_distribution(plugin_dir, f"[rolechain.actions]\nmarker = {PLUGIN_MODULE}\n")
    write_distribution(plugin_dir, "[rolechain.actions]\nprobe = acme_two\n[console_scripts]\nx = y:z\n", "acme-two")

    # the env var names one of them again: loaded once, entry points first
    loaded = load_plugins({"ROLECHAIN_PLUGINS": "acme_two"})

    assert sorted(loaded) == sorted([PLUGIN_MODULE, "acme_two"])
    assert {PLUGIN_ACTION, "acme_probe"} <= set(isolated_registry)


def test_an_entry_point_naming_an_object_is_refused(plugin_dir: Path) -> None:
    write_plugin_module(plugin_dir)
    write_distribution(plugin_dir, f"[rolechain.actions]\nmarker = {PLUGIN_MODULE}:put_marker\n")

    with pytest.raises(PluginError) as caught:
        load_plugins({})

    assert str(caught.value) == (
        f"plugin {PLUGIN_MODULE}:put_marker (entry point 'marker' of acme-tools 1.2.0): "
        "an entry point of rolechain.actions names a module, not an object"
    )


def test_an_entry_point_that_fails_to_import_names_the_entry_point_and_the_cause(plugin_dir: Path) -> None:
    write_distribution(plugin_dir, "[rolechain.actions]\nmarker = acme_gone.actions\n")

    with pytest.raises(PluginError) as caught:
        load_plugins({})

    assert str(caught.value) == (
        "plugin acme_gone.actions (entry point 'marker' of acme-tools 1.2.0): "
        "import failed: ModuleNotFoundError: No module named 'acme_gone'"
    )


# -- failures -----------------------------------------------------------------------------------------
def test_an_import_failure_names_the_plugin_and_its_cause_on_one_line(plugin_dir: Path) -> None:
    write_module(plugin_dir, "acme_broken", 'raise RuntimeError("needs\\n  ACME_TOKEN")\n')

    with pytest.raises(PluginError) as caught:
        load_plugins({"ROLECHAIN_PLUGINS": "acme_broken"})

    assert isinstance(caught.value, ConfigError)
    assert str(caught.value) == (
        "plugin acme_broken (ROLECHAIN_PLUGINS): import failed: RuntimeError: needs ACME_TOKEN"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_missing_module_names_it(isolated_registry: dict[str, Any]) -> None:
    with pytest.raises(PluginError, match=r"^plugin acme_missing \(ROLECHAIN_PLUGINS\): import failed: "):
        load_plugins({"ROLECHAIN_PLUGINS": "acme_missing"})


def test_a_plugin_that_fails_halfway_leaves_nothing_registered(
    plugin_dir: Path, isolated_registry: dict[str, Any]
) -> None:
    write_module(plugin_dir, "acme_half", action_module("acme_half", "acme_half") + "\nraise ImportError('late')\n")
    env = {"ROLECHAIN_PLUGINS": "acme_half"}

    for _ in range(2):  # a retry reports the same cause, not "registered twice"
        with pytest.raises(PluginError, match=r"import failed: ImportError: late$"):
            load_plugins(env)
        assert "acme_half" not in isolated_registry


def test_a_name_registered_again_names_both_modules(plugin_dir: Path) -> None:
    write_module(plugin_dir, "acme_dup", action_module("acme_dup", "whoami"))

    with pytest.raises(PluginError) as caught:
        load_plugins({"ROLECHAIN_PLUGINS": "acme_dup"})

    assert str(caught.value) == (
        "plugin acme_dup (ROLECHAIN_PLUGINS): "
        "action 'whoami': registered twice: by rolechain.actions.whoami and by acme_dup"
    )


def test_two_plugins_registering_one_name_name_both(plugin_dir: Path, isolated_registry: dict[str, Any]) -> None:
    write_module(plugin_dir, "acme_one", action_module("acme_one", "acme_same"))
    write_module(plugin_dir, "acme_other", action_module("acme_other", "acme_same"))

    with pytest.raises(PluginError) as caught:
        load_plugins({"ROLECHAIN_PLUGINS": "acme_one,acme_other"})

    assert caught.value.field == "plugin acme_other (ROLECHAIN_PLUGINS)"
    assert caught.value.rule == "action 'acme_same': registered twice: by acme_one and by acme_other"
    assert isolated_registry["acme_same"].module == "acme_one"


@pytest.mark.parametrize("name", ["Acme", "acme-probe", "_acme", "9acme", "acme probe", "a" * 65, "acme\n"])
def test_register_refuses_a_name_outside_the_action_name_rule(name: str, isolated_registry: dict[str, Any]) -> None:
    class P(Params):
        pass

    def run(ctx: ActionContext, params: P) -> dict[str, Any]:
        return {}

    with pytest.raises(ConfigError, match="a name is 1-64 of a-z, 0-9 and _, starting with a letter"):
        register(name, params=P, iam_actions=[], changes=False)(run)
    assert name not in isolated_registry


# -- the CLI ------------------------------------------------------------------------------------------
def cli_main(*argv: str) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [["actions"], ["policy", "target"], ["run", "--action", "whoami", "--accounts", "x"]])
def test_cli_exits_2_with_one_line_naming_the_broken_plugin(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("ROLECHAIN_PLUGINS", "acme_missing")

    code, out, err = cli_main(*argv)

    assert (code, out) == (2, "")
    assert err == (
        "rolechain: error: plugin acme_missing (ROLECHAIN_PLUGINS): "
        "import failed: ModuleNotFoundError: No module named 'acme_missing'\n"
    )


def test_cli_lists_a_plugin_action_and_its_permissions(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin_module(plugin_dir)
    monkeypatch.setenv("ROLECHAIN_PLUGINS", PLUGIN_MODULE)

    code, out, _ = cli_main("actions", "--json")
    assert code == 0
    (marker,) = [a for a in json.loads(out)["actions"] if a["name"] == PLUGIN_ACTION]
    assert marker["iam_actions"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert set(marker["params_schema"]["properties"]) == {"name", "value"}

    code, out, _ = cli_main("policy", "target")
    assert code == 0
    assert {"ssm:GetParameter", "ssm:PutParameter", "sts:GetCallerIdentity"} <= set(
        json.loads(out)["Statement"][0]["Action"]
    )


def test_a_fresh_cli_process_loads_a_plugin_that_imports_from_rolechain_actions(tmp_path: Path) -> None:
    # Given a plugin importing `from rolechain.actions import ActionContext, Params, register`, the way
    # that failed with a circular import on every command; a fresh interpreter, so nothing is imported before
    write_plugin_module(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "ROLECHAIN_PLUGINS": PLUGIN_MODULE}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # `actions` sends no request; if it did, it would fail

    result = run_process([sys.executable, "-m", "rolechain.cli", "actions", "--json"], env)

    assert result.code == 0, result.err
    assert PLUGIN_ACTION in [a["name"] for a in result.json["actions"]]
