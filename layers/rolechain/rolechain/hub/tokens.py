"""Page tokens the API hands out (``next_token``): opaque to callers and tamper-evident.

A token is the page's position and the query it belongs to (caller, filters), as compact JSON, with an
HMAC-SHA-256 that KMS computes with the stack's own HMAC key (``GenerateMac``/``VerifyMac``: the key
never leaves KMS, so nobody can make a token the hub accepts). A token whose MAC fails, that is not a
token at all, or that belongs to another query is refused with :class:`ConfigError` (a 400 naming
``next_token``), never followed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from rolechain.errors import ConfigError

MAC_ALGORITHM = "HMAC_SHA_256"
FIELD = "next_token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Seals and opens page tokens with a KMS HMAC key (the aws-access side of ``next_token``)."""

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, query: Mapping[str, Any], position: Mapping[str, Any]) -> str:
        """A token for going on after ``position`` with ``query`` (what the next request must repeat)."""
        message = json.dumps({"q": query, "p": position}, sort_keys=True, separators=(",", ":")).encode()
        mac = self._client.generate_mac(KeyId=self._key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)["Mac"]
        return f"{_b64(message)}.{_b64(mac)}"

    def open(self, token: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The position ``token`` holds, once its MAC is verified and it belongs to ``query``.

        Raises:
            ConfigError: (field ``next_token``) not a token, a MAC that fails, or another query's token.
        """
        try:
            text, mac_text = token.split(".")
            message, mac = _unb64(text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise ConfigError(FIELD, "is not a token this API issued") from None
        if not message or not mac or len(message) > 4096:
            raise ConfigError(FIELD, "is not a token this API issued")
        try:
            self._client.verify_mac(KeyId=self._key_id, Message=message, MacAlgorithm=MAC_ALGORITHM, Mac=mac)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("KMSInvalidMacException", "ValidationException"):
                raise ConfigError(FIELD, "is not a token this API issued (its signature does not verify)") from None
            raise
        content = json.loads(message)
        if content.get("q") != json.loads(json.dumps(dict(query))):
            raise ConfigError(FIELD, "belongs to another query (repeat the filters it came with)")
        position: dict[str, Any] = content["p"]
        return position
