"""The action registry: what an action is, and the least-privilege policies derived from it.

An action is a named, documented callable with a pydantic params model, the IAM actions it needs
(declared once, here, and nowhere else), whether it changes anything, a JSON-ready result and,
optionally, how to say that result in one line. Adding an action is one small module that calls
:func:`register`: a built-in is imported by ``rolechain.actions``, a plugin by
:func:`rolechain.actions.plugins.load_plugins`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from rolechain.chain import config_error
from rolechain.errors import ConfigError, RolechainError
from rolechain.types import ACTION_NAME

P = TypeVar("P", bound=BaseModel)

# Operation-name prefixes that read and never change anything; a dry-run client refuses the rest.
READ_ONLY_PREFIXES = ("get_", "list_", "describe_", "head_", "can_paginate", "get_paginator", "generate_presigned")
# An action's name goes into session names, job files, API bodies and SQS messages: keep it plain.
ACTION_NAME_RE = re.compile(f"^{ACTION_NAME}$")
SUMMARY_WIDTH = 200  # characters of the one-line summary of a target's output

Summary = Callable[[dict[str, Any]], str]


class Params(BaseModel):
    """Base of every action's params model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ActionFailed(RolechainError):
    """The action failed at this target but has a partial result worth reporting (``output``);
    ``retryable`` when a retry of the target may succeed (what failed was throttled or a 5xx)."""

    def __init__(self, message: str, output: dict[str, Any], *, retryable: bool = False) -> None:
        super().__init__(message)
        self.output = output
        self.retryable = retryable


class DuplicateAction(ConfigError):
    """Two modules register the same action name."""

    def __init__(self, name: str, first_module: str, second_module: str) -> None:
        super().__init__(f"action {name!r}", f"registered twice: by {first_module} and by {second_module}")
        self.name = name
        self.modules = (first_module, second_module)


class DryRunViolation(RolechainError):
    """An action tried a changing call during a dry run; the call was not sent."""


class _DryRunClient:
    """Wraps a boto3 client so that only read operations go through during a dry run.

    A safety net under each action's own dry-run branch: a mistake there fails the target
    instead of changing a resource.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if callable(attr) and not name.startswith(READ_ONLY_PREFIXES) and not name.startswith("_") and name != "meta":

            def refuse(*_args: Any, **_kwargs: Any) -> Any:
                raise DryRunViolation(f"dry run: refused changing call {name}")

            return refuse
        return attr


@dataclass
class ActionContext:
    """What an action receives for one target: where it is, and clients there (through the chain)."""

    account: str
    region: str
    dry_run: bool
    run_id: str
    client_factory: Callable[[str], Any]
    partition: str = "aws"
    notes: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        """A client in the target account and region; read-only during a dry run."""
        client = self.client_factory(service)
        return _DryRunClient(client) if self.dry_run else client


@dataclass(frozen=True)
class Action(Generic[P]):
    """A registered action. ``run`` returns a JSON-ready dict; ``summary`` says it in one line
    (``None``: the generic compact JSON); ``module`` is where it was registered."""

    name: str
    description: str
    params_model: type[P]
    iam_actions: tuple[str, ...]
    changes: bool
    run: Callable[[ActionContext, P], dict[str, Any]]
    summary: Summary | None = None
    module: str = ""

    def parse_params(self, data: dict[str, Any] | None, *, where: str = "params") -> P:
        """Validate ``data`` against the params model. Raises ConfigError naming the field."""
        try:
            return self.params_model.model_validate(data or {})
        except ValidationError as exc:
            raise config_error(exc, where=where) from exc

    def session_policy(self) -> dict[str, Any]:
        """The session policy passed on the last hop: the target session can do no more than this."""
        return policy_document(self.iam_actions)

    def summarize(self, output: dict[str, Any]) -> str:
        """One line (at most :data:`SUMMARY_WIDTH` characters) about one target's ``output``.

        A summary that raises falls back to the generic line: the run is over, its report must not be lost.
        """
        line = None
        if self.summary is not None:
            try:
                line = self.summary(output)
            except Exception:
                line = None
        if line is None:
            line = json.dumps(output, default=str)
        return one_line(line)[:SUMMARY_WIDTH]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "changes": self.changes,
            "iam_actions": list(self.iam_actions),
            "params_schema": self.params_model.model_json_schema(),
        }


REGISTRY: dict[str, Action[Any]] = {}


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def register(
    name: str,
    *,
    params: type[P],
    iam_actions: Iterable[str],
    changes: bool,
    summary: Summary | None = None,
) -> Callable[[Callable[[ActionContext, P], dict[str, Any]]], Callable[[ActionContext, P], dict[str, Any]]]:
    """Decorator registering ``func`` as action ``name``; its docstring's first paragraph describes it.

    ``iam_actions`` are all the action may do at a target (its session policy), ``changes`` whether it
    changes anything, ``summary`` turns one target's output into one line for the CLI's table.
    Raises ConfigError for a name outside ``[a-z][a-z0-9_]{0,63}``, DuplicateAction for a name taken.
    """

    def decorate(func: Callable[[ActionContext, P], dict[str, Any]]) -> Callable[[ActionContext, P], dict[str, Any]]:
        if not ACTION_NAME_RE.fullmatch(name):
            raise ConfigError(f"action {name!r}", "a name is 1-64 of a-z, 0-9 and _, starting with a letter")
        if name in REGISTRY:
            raise DuplicateAction(name, REGISTRY[name].module, func.__module__)
        description = (func.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        REGISTRY[name] = Action(
            name=name,
            description=one_line(description),
            params_model=params,
            iam_actions=tuple(sorted(set(iam_actions))),
            changes=changes,
            run=func,
            summary=summary,
            module=func.__module__,
        )
        return func

    return decorate


def get_action(name: str) -> Action[Any]:
    """The registered action ``name``. Raises ConfigError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError("action", f"unknown action {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def policy_document(iam_actions: Iterable[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": sorted(set(iam_actions)), "Resource": "*"}],
    }


# What the runner itself asks of a target session: the account's enabled regions (for regions: all).
RUNNER_IAM_ACTIONS = ("ec2:DescribeRegions",)


def target_role_policy(names: Iterable[str] | None = None) -> dict[str, Any]:
    """The permissions R2 needs for the named actions (all registered ones by default): the union,
    with the runner's own (:data:`RUNNER_IAM_ACTIONS`)."""
    selected = [get_action(n) for n in names] if names is not None else list(REGISTRY.values())
    return policy_document([*(a for action in selected for a in action.iam_actions), *RUNNER_IAM_ACTIONS])
