"""A throwaway rolechain plugin for the plugin tests: ``acme_marker``, whose action ``put_marker`` writes
an SSM parameter in the target account. Written as a bare module (for ``ROLECHAIN_PLUGINS``) or as an
installable package whose ``pyproject.toml`` declares the ``rolechain.actions`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

PLUGIN_MODULE = "acme_marker"
PLUGIN_ACTION = "put_marker"
PLUGIN_IAM_ACTIONS = ["ssm:GetParameter", "ssm:PutParameter"]
MARKER = "/acme/marker"

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """acme_marker: a rolechain plugin that leaves a marker in each target account."""

    from __future__ import annotations

    from typing import Any

    from pydantic import Field
    from rolechain.actions import ActionContext, Params, register


    class MarkerParams(Params):
        name: str = Field(default="/acme/marker", pattern=r"^/[A-Za-z0-9/_.-]{1,200}$")
        value: str = Field(min_length=1, max_length=256)


    @register(
        "put_marker",
        params=MarkerParams,
        iam_actions=["ssm:PutParameter", "ssm:GetParameter"],
        changes=True,
        summary=lambda out: f"marker {out['name']}: {out['before']} -> {out['value']}",
    )
    def put_marker(ctx: ActionContext, params: MarkerParams) -> dict[str, Any]:
        """Write ``value`` to the SSM parameter ``name`` of the target account.

        It ignores ctx.dry_run on purpose: the dry-run guard must refuse its PutParameter."""
        ssm = ctx.client("ssm")
        try:
            before = ssm.get_parameter(Name=params.name)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            before = None
        ssm.put_parameter(Name=params.name, Value=params.value, Type="String", Overwrite=True)
        return {"name": params.name, "before": before, "value": params.value}
    '''
).lstrip()

PYPROJECT = textwrap.dedent(
    f"""
    [build-system]
    requires = ["setuptools>=68"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "acme-marker"
    version = "0.1.0"
    dependencies = ["rolechain"]

    [project.entry-points."rolechain.actions"]
    marker = "{PLUGIN_MODULE}"

    [tool.setuptools]
    py-modules = ["{PLUGIN_MODULE}"]
    """
).lstrip()


def write_plugin_module(directory: Path) -> Path:
    """``acme_marker.py`` in ``directory`` (put ``directory`` on sys.path and name it in ROLECHAIN_PLUGINS)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PLUGIN_MODULE}.py"
    path.write_text(PLUGIN_SOURCE)
    return path


def write_plugin_package(directory: Path) -> Path:
    """The plugin as a package to pip-install: ``acme_marker.py`` and a ``pyproject.toml`` with the entry point."""
    write_plugin_module(directory)
    (directory / "pyproject.toml").write_text(PYPROJECT)
    return directory


def plugin_venv(directory: Path, package: Path) -> Path:
    """A virtual environment that sees this interpreter's packages (rolechain included) and has ``package``
    installed in its own site-packages; returns its python.

    ``venv --system-site-packages`` made from a venv's python sees the *base* interpreter's packages, not
    the venv's, so a ``.pth`` file adds this interpreter's site-packages (its own .pth files included,
    so rolechain's editable install works there too)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=120)
    python = directory / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    )
    ours = sysconfig.get_path("purelib")
    (site_packages / "_rolechain_test_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(package)],
        check=True,
        env=env,
        timeout=300,
    )
    return python
