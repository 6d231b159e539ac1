"""Targets resolved live from AWS Organizations: every ACTIVE account below the root or some OUs, filtered
by account tags, combined with explicit accounts, minus exclusions. The plan of a run, before anything runs.

Organizations is read through a chain (a role in the management account or a delegated administrator,
``organization.role``; default: the base credentials), paged, cached for the reader's life (one run, or a
few minutes in a warm Lambda container) and retried with backoff and jitter on TooManyRequestsException,
which Organizations answers from a few hundred accounts on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolechain.chain import Chain, role_arn_parts
from rolechain.errors import AssumeRoleError, RolechainError
from rolechain.jobs import OrganizationTargets, Targets
from rolechain.sessions import ChainSessions

THROTTLED = {"TooManyRequestsException", "ThrottlingException", "Throttling"}
READ_ORGANIZATION = (
    "organizations:ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent, ListTagsForResource"
)


class OrganizationError(RolechainError):
    """Organizations could not be read: the targets of a run are unknown, so nothing runs."""


@dataclass(frozen=True)
class Excluded:
    account: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"account": self.account, "why": self.why}


@dataclass(frozen=True)
class Resolved:
    """The accounts a run targets, in order (explicit ones first, then the organisation's by id), the
    accounts left out and why, and the OU each organisation account sits in ("" for explicit ones)."""

    accounts: list[str]
    excluded: list[Excluded] = field(default_factory=list)
    ou_of: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Account:
    id: str
    status: str
    parent: str  # the OU (or root) id it sits in


class OrganizationReader:
    """Reads accounts, OUs and account tags through ``via`` chains; thread-safe, cached per chain.

    ``sleep`` and ``attempts`` govern the retries on throttling beyond botocore's own (tests set them).
    """

    def __init__(
        self,
        sessions: ChainSessions,
        *,
        attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 0.5,
    ) -> None:
        self.sessions = sessions
        self.attempts, self.sleep, self.base_delay = attempts, sleep, base_delay
        self._lock = threading.Lock()
        self._trees: dict[str | None, dict[str, list[_Account]]] = {}  # via -> parent id -> its accounts
        self._children: dict[tuple[str | None, str], list[str]] = {}  # (via, parent) -> child OU ids
        self._roots: dict[str | None, str] = {}
        self._tags: dict[tuple[str | None, str], dict[str, str]] = {}
        self.calls = 0  # Organizations requests sent (benchmarks and tests read it)

    # -- reading -----------------------------------------------------------------------------
    def _client(self, via: str | None) -> Any:
        chain = Chain.build([via], session_name="rolechain-organizations") if via else None
        return self.sessions.client(chain, "organizations")

    def _call(self, via: str | None, operation: str, **params: Any) -> Any:
        """One request, retried on throttling with full-jitter exponential backoff."""
        client = self._client(via)
        for attempt in range(self.attempts):
            try:
                with self._lock:
                    self.calls += 1
                return getattr(client, operation)(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in THROTTLED or attempt == self.attempts - 1:
                    raise
                self.sleep(random.uniform(0, self.base_delay * 2**attempt))
        raise AssertionError("unreachable")

    def _pages(self, via: str | None, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(via, operation, **params, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def root(self, via: str | None) -> str:
        if via not in self._roots:
            roots = list(self._pages(via, "list_roots", "Roots"))
            if not roots:
                raise OrganizationError("Organizations lists no root")
            self._roots[via] = str(roots[0]["Id"])
        return self._roots[via]

    def accounts_below(self, via: str | None, parent: str) -> list[_Account]:
        """Every account in ``parent`` (an OU or the root) and in every OU below it."""
        found: list[_Account] = []
        pending = [parent]
        while pending:
            current = pending.pop()
            found += self._accounts_in(via, current)
            pending += self._child_ous(via, current)
        return found

    def _accounts_in(self, via: str | None, parent: str) -> list[_Account]:
        tree = self._trees.setdefault(via, {})
        if parent not in tree:
            tree[parent] = [
                _Account(str(a["Id"]), str(a.get("State") or a.get("Status") or ""), parent)
                for a in self._pages(via, "list_accounts_for_parent", "Accounts", ParentId=parent)
            ]
        return tree[parent]

    def _child_ous(self, via: str | None, parent: str) -> list[str]:
        key = (via, parent)
        if key not in self._children:
            self._children[key] = [
                str(ou["Id"])
                for ou in self._pages(
                    via, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent
                )
            ]
        return self._children[key]

    def tags(self, via: str | None, account: str) -> dict[str, str]:
        key = (via, account)
        if key not in self._tags:
            self._tags[key] = {
                str(t["Key"]): str(t["Value"])
                for t in self._pages(via, "list_tags_for_resource", "Tags", ResourceId=account)
            }
        return self._tags[key]


def resolve(
    targets: Targets,
    reader: OrganizationReader | None,
    *,
    hub_account: str | None = None,
    where: str = "targets",
) -> Resolved:
    """The accounts ``targets`` name. Explicit accounts are kept as given (the hub account too); the
    organisation's are its ACTIVE accounts below the root or the OUs, whose tags match, except the hub
    account. Exclusions apply to both. Raises OrganizationError when Organizations cannot be read."""
    excluded: list[Excluded] = []
    accounts: list[str] = list(dict.fromkeys(targets.accounts))
    ou_of = dict.fromkeys(accounts, "")
    if targets.organization is not None:
        if reader is None:
            raise OrganizationError(f"{where}.organization: needs AWS Organizations, and no reader was given")
        org = targets.organization
        try:
            found = _organization_accounts(org, reader)
            below_excluded = {a.id: ou for ou in targets.exclude_ous for a in reader.accounts_below(org.role, ou)}
            for account in found:
                if account.id in ou_of:
                    continue  # listed explicitly as well
                why = _left_out(account, org, reader, hub_account, below_excluded)
                if why:
                    excluded.append(Excluded(account.id, why))
                else:
                    accounts.append(account.id)
                    ou_of[account.id] = account.parent
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            through = f"through {org.role}" if org.role else "with the base credentials"
            raise OrganizationError(
                f"{where}.organization: cannot read AWS Organizations {through} ({code}): that role needs "
                f"{READ_ORGANIZATION}, in the management account or a delegated administrator"
            ) from exc
        except (AssumeRoleError, BotoCoreError) as exc:
            raise OrganizationError(f"{where}.organization: cannot read AWS Organizations: {exc}") from exc
    unwanted = set(targets.exclude_accounts)
    kept = [a for a in accounts if a not in unwanted]
    excluded += [Excluded(a, "listed in exclude_accounts") for a in accounts if a in unwanted]
    return Resolved(kept, excluded, {a: ou_of.get(a, "") for a in kept})


def _organization_accounts(org: OrganizationTargets, reader: OrganizationReader) -> list[_Account]:
    parents = [reader.root(org.role)] if org.root else list(org.ous)
    seen: dict[str, _Account] = {}
    for parent in parents:
        for account in reader.accounts_below(org.role, parent):
            seen.setdefault(account.id, account)
    return [seen[key] for key in sorted(seen)]


def _left_out(
    account: _Account,
    org: OrganizationTargets,
    reader: OrganizationReader,
    hub_account: str | None,
    below_excluded: dict[str, str],
) -> str:
    if account.status != "ACTIVE":
        return f"not ACTIVE ({account.status or 'status unknown'})"
    if account.id == hub_account:
        return "the hub account: list it in targets.accounts to target it"
    if account.id in below_excluded:
        return f"in {below_excluded[account.id]}, listed in exclude_ous"
    if org.tags:
        tags = reader.tags(org.role, account.id)
        differs = [f"{k}={v}" for k, v in sorted(org.tags.items()) if tags.get(k) != v]
        if differs:
            return "tags do not match: " + ", ".join(differs)
    return ""


def resolve_accounts(
    sessions: ChainSessions, targets: Targets, *, where: str = "targets", via: Sequence[str] = ()
) -> Resolved:
    """:func:`resolve` with a fresh reader. The hub account is the account of the last ``via`` hop
    before the target role (R1's, for an operator going through it), else the base credentials'."""
    if targets.organization is None:
        return resolve(targets, None)
    hub = role_arn_parts(via[-1])[1] if via else sessions.identity(None).account
    return resolve(targets, OrganizationReader(sessions), hub_account=hub, where=where)


__all__ = [
    "Excluded",
    "OrganizationError",
    "OrganizationReader",
    "Resolved",
    "resolve",
    "resolve_accounts",
]
