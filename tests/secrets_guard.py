"""The seeded secrets of a test run, and a check that no output shows one (issue 10, defect 1).

Every seeded ExternalId, access key id, secret key and session token the tests know of is kept in
:data:`GUARD`: the integration fixtures add the landscape's, R1's and every credential the chain cache
obtained. The integration tier fails a test whose captured stdout, stderr or log, whose CLI output, or
whose DynamoDB/SQS writes contain one (``tests/integration/conftest.py``); ``GUARD.check`` serves tests
that capture output of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rolechain.sessions import CredentialCache
from rolechain_dev.emulator import Emulator, Seed

MIN_SECRET_CHARS = 8  # shorter values ("testing", "x") would match ordinary text
STORED_SERVICES = ("dynamodb", "sqs")  # where rolechain writes what later becomes a response


class SecretGuard:
    """The secret values seeded or issued so far; :meth:`leaks` finds them in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        self._secrets.update(v for v in values if v and len(v) >= MIN_SECRET_CHARS)

    def clear(self) -> None:
        self._secrets.clear()

    def learn_seed(self, seed: Seed) -> None:
        self.add(seed.external_id, seed.user_access_key_id, seed.user_secret_access_key)

    def learn_credentials(self, credentials: Mapping[str, Any]) -> None:
        """An STS ``Credentials`` mapping (AccessKeyId, SecretAccessKey, SessionToken)."""
        self.add(*(str(credentials.get(k) or "") for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")))

    def learn_cache(self, cache: CredentialCache) -> None:
        """Every credential the chain cache holds (hop credentials rolechain obtained from STS)."""
        for node in cache.nodes():
            credentials = node._credentials
            if credentials is not None:  # the private fields: reading the properties could refresh them
                self.add(*(getattr(credentials, f"_{k}", None) or getattr(credentials, k, None) for k in _KEYS))

    def leaks(self, text: str) -> list[str]:
        """The secrets in ``text``, masked to their first four characters."""
        return sorted(f"{s[:4]}..." for s in self._secrets if s in text)

    def check(self, text: str, where: str) -> None:
        """Raises AssertionError naming ``where`` when ``text`` shows a known secret."""
        found = self.leaks(text)
        if found:
            raise AssertionError(f"{where} shows seeded secret(s) {', '.join(found)}")

    def stored_leaks(self, emulator: Emulator) -> list[str]:
        """The secrets in what was written to DynamoDB and SQS since the emulator's requests were cleared."""
        return self.leaks(_stored_text(emulator.calls(include_admin=True)))


_KEYS = ("access_key", "secret_key", "token")


def _stored_text(requests: Iterable[Any]) -> str:
    return "\n".join(
        json.dumps(r.body, default=str) + json.dumps(r.params) for r in requests if r.service in STORED_SERVICES
    )


GUARD = SecretGuard()
