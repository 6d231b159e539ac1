"""Shared test set-up.

moto is imported first so its request interceptor is among botocore's built-in handlers before
rolechain builds its template session (unit tests run moto in-process; integration tests talk to
a moto server over HTTP and are unaffected).
"""

import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import moto  # noqa: F401
import pytest

# Never let a test reach real AWS with a developer's credentials.
for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(var, None)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


PLUGIN_MODULE_PREFIX = "acme_"  # the plugin tests' throwaway modules are named so


@pytest.fixture
def isolated_registry() -> Iterator[dict[str, Any]]:
    """The action registry, the plugin loader's memory and the ``acme_*`` modules are put back as they
    were after the test: a plugin one test loads must not leak into the next (R2's seeded policy, the
    template checks and the ``actions`` listings read the registry)."""
    from rolechain.actions import REGISTRY, plugins

    saved, loaded = dict(REGISTRY), set(plugins._LOADED)
    importlib.invalidate_caches()  # modules and dist-infos the test writes must be found
    yield REGISTRY
    REGISTRY.clear()
    REGISTRY.update(saved)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    for name in [n for n in sys.modules if n.startswith(PLUGIN_MODULE_PREFIX)]:
        del sys.modules[name]
    importlib.invalidate_caches()
