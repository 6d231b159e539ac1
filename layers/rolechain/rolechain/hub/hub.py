"""The hub: one per container, holding what its use cases share (settings, chained sessions with R1 as
base, the job file, the run store and the target queue). Each use case is a function in its own
module taking the hub first; the class binds them as methods so handlers call ``HUB.start_job(...)``."""

from __future__ import annotations

from functools import cached_property

from rolechain.errors import ConfigError
from rolechain.hub import remediation, runs, worker
from rolechain.hub.queue import TargetQueue
from rolechain.hub.settings import Settings
from rolechain.hub.store import RunStore
from rolechain.jobs import JobFile, load_job_file
from rolechain.sessions import ChainSessions


class Hub:
    """The hub's use cases over its adapters (DynamoDB store, SQS queue)."""

    def __init__(self, settings: Settings, sessions: ChainSessions) -> None:
        self.settings = settings
        self.sessions = sessions

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

    # scheduler and API (runs.py), worker (worker.py), remediation (remediation.py)
    start_job = runs.start_job
    _start = runs.start
    create_run = runs.create_run
    get_run = runs.get_run
    list_actions = runs.list_actions
    list_jobs = runs.list_jobs
    process_target = worker.process_target
    remediate = remediation.remediate
