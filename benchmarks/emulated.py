"""The emulator in a child process, so a benchmark's CPU time is the client's alone.

The child runs :class:`rolechain_dev.emulator.Emulator`, seeds it, and answers requests over a pipe:
("calls",) -> Counter of recorded (service, action) since the last ("clear",); ("latency", s);
("server",) -> (the child's CPU seconds so far, summed in-server seconds of the recorded requests);
("fault", action, code, message, status, times) -> inject an AWS-shaped error (Emulator.inject_fault);
("enforce_iam", bool) -> turn IAM enforcement of non-STS requests on or off (Emulator.enforce_iam).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Iterator
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
