"""Shared test set-up.

moto is imported first so its request interceptor is among botocore's built-in handlers before
rolechain builds its template session (unit tests run moto in-process; integration tests talk to
a moto server over HTTP and are unaffected).
"""

import os

import moto  # noqa: F401

# Never let a test reach real AWS with a developer's credentials.
for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(var, None)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
