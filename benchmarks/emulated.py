"""The emulator in a child process, so a benchmark's CPU time is the client's alone.

The child runs :class:`rolechain_dev.emulator.Emulator`, seeds it, and answers requests over a pipe:
("calls",) -> Counter of recorded (service, action) since the last ("clear",); ("latency", s);
("server",) -> (the child's CPU seconds so far, summed in-server seconds of the recorded requests);
("fault", action, code, message, status, times) -> inject an AWS-shaped error (Emulator.inject_fault);
("enforce_iam", bool) -> turn IAM enforcement of non-STS requests on or off (Emulator.enforce_iam).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from rolechain_dev.emulator import Emulator, Seed


def _serve(conn: Connection, seed_kwargs: dict[str, Any]) -> None:
    with Emulator() as emulator:
        conn.send(emulator.seed(**seed_kwargs).to_dict())
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return
            if message[0] == "calls":
                conn.send(Counter((r.service, r.action) for r in emulator.calls()))
            elif message[0] == "clear":
                emulator.clear_requests()
                conn.send(True)
            elif message[0] == "server":
                conn.send((time.process_time(), sum(r.duration for r in emulator.calls())))
            elif message[0] == "fault":
                emulator.inject_fault(*message[1:])
                conn.send(True)
            elif message[0] == "latency":
                emulator.latency = float(message[1])
                conn.send(True)
            elif message[0] == "enforce_iam":
                emulator.enforce_iam = bool(message[1])
                conn.send(True)


class Remote:
    def __init__(self, conn: Connection, seed: Seed) -> None:
        self._conn = conn
        self.seed = seed

    def _ask(self, *message: Any) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def calls(self) -> Counter[tuple[str, str]]:
        result: Counter[tuple[str, str]] = self._ask("calls")
        return result

    def clear(self) -> None:
        self._ask("clear")

    def set_latency(self, seconds: float) -> None:
        self._ask("latency", seconds)

    def set_enforce_iam(self, on: bool) -> None:
        """Whether the emulator checks every request against the caller's IAM policies (default on)."""
        self._ask("enforce_iam", on)

    def inject_fault(self, action: str, code: str, message: str, status: int = 400, times: int = 1) -> None:
        """The next ``times`` requests for ``action`` fail with this AWS error."""
        self._ask("fault", action, code, message, status, times)

    def server(self) -> tuple[float, float]:
        """(CPU seconds the emulator process has used so far, seconds spent handling the requests
        recorded since the last clear, summed over requests: above wall time when they overlap)."""
        cpu, busy = self._ask("server")
        return float(cpu), float(busy)


@contextmanager
def emulated(**seed_kwargs: Any) -> Iterator[Remote]:
    """A seeded emulator in a child process for the duration of the block."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child, seed_kwargs), daemon=True)
    process.start()
    try:
        seed = Seed.from_dict(parent.recv())
        yield Remote(parent, seed)
        parent.send(("stop",))
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


def cli_invocation(
    seed: Seed,
    accounts: Sequence[str],
    action: str,
    params: dict[str, Any],
    workers: int,
    *,
    launcher: Sequence[str] = ("-m", "rolechain.cli"),
    output: Sequence[str] = ("--json",),
    state_home: str = os.devnull,
) -> tuple[list[str], dict[str, str]]:
    """The ``rolechain run`` command line and environment of an ad-hoc run over ``accounts``: the
    operator's U1 keys in the environment, R1 as ``--via``, the emulator as ``AWS_ENDPOINT_URL``; the
    interpreter runs ``launcher`` (a module, or ``-c`` and code) and ``output`` chooses the format. Never
    printed: the command line holds the ExternalId, and the environment U1's keys."""
    argv = [
        sys.executable,
        *launcher,
        "run",
        "--action",
        action,
        "--params-json",
        json.dumps(params),
        "--accounts",
        ",".join(accounts),  # 10,000 accounts: 130 KB, within Linux's 128 KiB limit of one argument
        "--role-name",
        seed.target_role_name,
        "--via",
        seed.hub_role_arn,
        "--external-id",
        seed.external_id,
        "--region",
        seed.region,
        "--concurrency",
        str(workers),
        *output,
    ]
    # PYTHONDONTWRITEBYTECODE off: a CLI installed by pip has its modules compiled; the editable
    # install's first run compiles and keeps them (in __pycache__, ignored by git), as pip would have.
    dropped = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        AWS_ACCESS_KEY_ID=seed.user_access_key_id,
        AWS_SECRET_ACCESS_KEY=seed.user_secret_access_key,
        AWS_ENDPOINT_URL=seed.endpoint_url,
        XDG_STATE_HOME=state_home,  # an interrupted run would save its report there
    )
    return argv, env
