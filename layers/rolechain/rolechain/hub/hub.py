"""The hub: one per container, holding what its use cases share (settings, chained sessions with R1 as
base, the job file, the run store and the target queue). Each use case is a function in its own
module taking the hub first; the class binds them as methods so handlers call ``HUB.start_job(...)``."""

from __future__ import annotations

import time
from functools import cached_property

from rolechain.errors import ConfigError, RolechainError
from rolechain.hub import remediation, runs, worker
from rolechain.hub.events import RunEvents
from rolechain.hub.queue import TargetQueue
from rolechain.hub.results import ResultsBucket
from rolechain.hub.settings import Settings
from rolechain.hub.store import RunStore
from rolechain.hub.tokens import PageTokens
from rolechain.jobs import JobFile, Targets, load_job_file
from rolechain.sessions import ChainSessions
from rolechain.targets import OrganizationReader, resolve

ORGANIZATION_TTL = 300.0  # seconds the hub trusts what it read from Organizations


class Hub:
    """The hub's use cases over its adapters (DynamoDB store, SQS queue)."""

    def __init__(self, settings: Settings, sessions: ChainSessions) -> None:
        self.settings = settings
        self.sessions = sessions
        self._reader: tuple[float, OrganizationReader] | None = None

    @cached_property
    def job_file(self) -> JobFile:
        return load_job_file(self.settings.job_file)

    @cached_property
    def store(self) -> RunStore:
        return RunStore(self.sessions.client(None, "dynamodb"), self.settings.runs_table, self.settings.run_ttl_days)

    @cached_property
    def queue(self) -> TargetQueue:
        if not self.settings.target_queue_url:
            raise ConfigError("TARGET_QUEUE_URL", "is not set, so large runs cannot be queued")
        return TargetQueue(self.sessions.client(None, "sqs"), self.settings.target_queue_url)

    @cached_property
    def results(self) -> ResultsBucket:
        if not self.settings.results_bucket:
            raise RolechainError("RESULTS_BUCKET is not set, so results cannot be kept")
        return ResultsBucket(self.sessions.client(None, "s3"), self.settings.results_bucket, self.hub_account)

    @cached_property
    def tokens(self) -> PageTokens:
        if not self.settings.page_token_key:
            raise RolechainError("PAGE_TOKEN_KEY_ID is not set, so pages of runs and results cannot be sealed")
        return PageTokens(self.sessions.client(None, "kms"), self.settings.page_token_key)

    @cached_property
    def events(self) -> RunEvents:
        return RunEvents(self.sessions.client(None, "events"), self.settings.event_bus_name)

    @cached_property
    def hub_account(self) -> str:
        return self.sessions.identity(None).account

    def targets_of(self, targets: Targets, where: str) -> list[str]:
        """The accounts ``targets`` name, organisation targets read live through a reader kept for
        :data:`ORGANIZATION_TTL` seconds (a warm container does not re-read Organizations per message)."""
        now = time.monotonic()
        if self._reader is None or now - self._reader[0] > ORGANIZATION_TTL:
            self._reader = (now, OrganizationReader(self.sessions))
        return resolve(targets, self._reader[1], hub_account=self.hub_account, where=where).accounts

    # scheduler and API (runs.py), worker (worker.py), remediation (remediation.py)
    start_job = runs.start_job
    complete_if_done = runs.complete_if_done
    continue_queueing = runs.continue_queueing
    _start = runs.start
    create_run = runs.create_run
    get_run = runs.get_run
    list_runs = runs.list_runs
    list_actions = runs.list_actions
    list_jobs = runs.list_jobs
    process_target = worker.process_target
    remediate = remediation.remediate
