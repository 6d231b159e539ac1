"""Starting and reading runs: the scheduler's jobs and the API's on-demand runs.

A run is recorded first, then executed at once (few targets) or queued, one SQS message per target.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, overload

from botocore.exceptions import ClientError

from rolechain.actions import REGISTRY
from rolechain.chain import new_run_id
from rolechain.errors import ConfigError
from rolechain.hub import rollout
from rolechain.hub.authz import RunScope, authorize_run, matching_rules, may_read, may_read_all
from rolechain.hub.errors import Forbidden, NotFound, UnknownRun
from rolechain.hub.models import (
    Caller,
    ContinueMessage,
    QueuedPlan,
    Rerun,
    ResultQuery,
    RunListQuery,
    RunRequest,
    TargetMessage,
)
from rolechain.hub.results import results_prefix
from rolechain.hub.store import INTERNAL_KEYS, RUNS_PARTITION, results_by_target
from rolechain.jobs import OrganizationTargets, RoleRef, Targets
from rolechain.planning import PlanRequest, RunPlan, plan_job, plan_run
from rolechain.runner import Status, TargetResult, run_plan

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub

logger = logging.getLogger(__name__)
PAGE_BYTES = 4_000_000  # results of one GET /runs/{id} page, at most (Lambda answers at most 6 MB)
ENQUEUE_RESERVE = 10.0  # seconds an enqueueing invocation keeps for itself: then the queue continues


def start_job(
    hub: Hub,
    job: str,
    *,
    remaining_seconds: Callable[[], float] | None = None,
    caller: Caller | None = None,
    accounts: Sequence[str] | None = None,
    dry_run: bool | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run job ``job``: at once when it has few targets, else one SQS message per target."""
    plan = _job_plan(hub, job, caller, accounts, dry_run)
    return start(hub, plan, run_id or new_run_id(), caller, remaining_seconds)


def _job_plan(
    hub: Hub, job: str, caller: Caller | None, accounts: Sequence[str] | None, dry_run: bool | None
) -> RunPlan:
    request = PlanRequest(
        accounts=accounts or (),
        dry_run=dry_run,
        source_identity=caller.source_identity if caller else None,
        session_tags=caller.session_tags if caller else None,
    )
    return plan_job(hub.sessions, hub.job_file, job, request, resolve=hub.targets_of)


def run_record(
    run_id: str, job: str | None, action: str, dry_run: bool, caller: Caller | None, target_count: int
) -> dict[str, Any]:
    """The stored record of a run (its results are items of their own)."""
    return {
        "run_id": run_id,
        "job": job,
        "action": action,
        "dry_run": dry_run,
        "requested_by": caller.arn if caller else None,
        "created_at": datetime.now(UTC).isoformat(),
        "target_count": target_count,
    }


def start(
    hub: Hub,
    plan: RunPlan,
    run_id: str,
    caller: Caller | None,
    remaining_seconds: Callable[[], float] | None,
    *,
    inline: bool | None = None,
    rerun_of: str | None = None,
) -> dict[str, Any]:
    """Record the run, then run it at once (few targets, or ``inline``) or queue one message per target."""
    run = run_record(run_id, plan.job, plan.action.name, plan.dry_run, caller, len(plan.targets))
    run["results_uri"] = hub.results.uri(results_prefix(run))
    if rerun_of is not None:
        run["rerun_of"] = rerun_of
    accounts = list(dict.fromkeys(t.account for t in plan.targets))  # kept in plan items when queued
    planned = QueuedPlan(
        params=plan.params.model_dump(mode="json", exclude_unset=True),
        account_count=len(accounts),
        regions=list(dict.fromkeys(t.region for t in plan.targets)),
        role=RoleRef.model_validate(plan.role.model_dump(include=set(RoleRef.model_fields))),
    ).model_dump(mode="json")  # what the run was planned as (no ExternalId: the record is readable)
    if inline or (inline is None and len(plan.targets) <= hub.settings.inline_target_limit):
        run["mode"] = "inline"
        run["planned"] = planned  # a rerun of an ad-hoc run plans it again from here
        hub.store.put_run(run)
        report = run_plan(hub.sessions, plan, run_id=run_id, remaining_seconds=remaining_seconds)
        targets = [(t.account, t.region) for t in plan.targets]
        uris = archive_inline(hub, run, report.results, targets)
        hub.store.record_inline(run_id, report.results, targets, uris)
        try:
            complete_if_done(hub, run_id)
        except Exception:  # the run is over and recorded: its report must reach the caller
            logger.exception("run %s: the completion event was not sent", run_id)
        return {**run, **report.to_dict(), "status": "completed"}
    run["mode"] = "queued"
    run["queued"] = planned  # what the worker checks every message against
    run["enqueued"] = 0
    run.update(rollout.guard_fields(plan, len(plan.targets)))  # waves are queued one at a time
    # the plan's accounts first: a worker refuses a message whose account the plan does not hold
    targets = list(dict.fromkeys((t.account, t.region) for t in plan.targets))
    run["plan_buckets"] = hub.store.put_plan(run_id, targets)
    hub.store.put_run(run)
    messages = TargetMessages(run, targets)
    try:
        sent = _enqueue(hub, run_id, messages, 0, rollout.part_end(run, 0, len(messages)), remaining_seconds)
    except Exception:
        # what was sent is lost to the record otherwise: the queue continues from the start, and the
        # markers keep a target queued twice from being run or counted twice
        hub.queue.send([ContinueMessage(run_id=run_id, start=0)])
        raise
    logger.info("run %s queued %d of %d target(s)", run_id, sent, len(messages))
    return {**run, "status": "queued", "enqueued": sent}


def archive_inline(
    hub: Hub, record: dict[str, Any], results: Sequence[TargetResult], targets: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Write an inline run's results to the results bucket, one object per target; each result's
    (account, region) -> its object's URI. The run has happened and cannot be retried: a bucket that
    refuses is logged and the results stay in DynamoDB (an output too large for it says so)."""
    uris: dict[tuple[str, str], str] = {}
    try:
        for (account, region), found in results_by_target(results, targets).items():
            if found:
                uri = hub.results.put_target(record, account, region, found)
                uris.update({(r.account, r.region): uri for r in found})
    except Exception:
        logger.exception("run %s: the results bucket refused its results", record["run_id"])
    return uris


class TargetMessages(Sequence[TargetMessage]):
    """The target messages of a queued run's ``targets`` (account, region), in their order, each made when
    read: 10,000 targets hold 10,000 small tuples, not 10,000 models (sending reads 80 at a time)."""

    def __init__(self, record: dict[str, Any], targets: Sequence[tuple[str, str]]) -> None:
        queued = QueuedPlan.model_validate(record["queued"])
        self._targets = targets
        self._fields = {
            "run_id": record["run_id"],
            "job": record.get("job"),
            "action": record["action"],
            "params": queued.params,
            "dry_run": bool(record["dry_run"]),
            "requested_by": record.get("requested_by"),
            "role": queued.role,
            "plan_buckets": record.get("plan_buckets"),
        }

    def __len__(self) -> int:
        return len(self._targets)

    @overload
    def __getitem__(self, index: int) -> TargetMessage: ...
    @overload
    def __getitem__(self, index: slice) -> list[TargetMessage]: ...
    def __getitem__(self, index: int | slice) -> TargetMessage | list[TargetMessage]:
        if isinstance(index, slice):
            return [self._message(*target) for target in self._targets[index]]
        return self._message(*self._targets[index])

    def _message(self, account: str, region: str) -> TargetMessage:
        return TargetMessage(**self._fields, account=account, region=region)


def _enqueue(
    hub: Hub,
    run_id: str,
    messages: Sequence[TargetMessage],
    start: int,
    end: int,
    remaining_seconds: Callable[[], float] | None,
) -> int:
    """Send ``messages[start:end]`` within the time left; what does not fit is left to the worker that
    reads the :class:`ContinueMessage` sent instead. Returns how many were sent."""
    sent = hub.queue.send(messages[start:end], remaining_seconds=remaining_seconds, reserve_seconds=ENQUEUE_RESERVE)
    upto = start + sent
    hub.store.set_enqueued(run_id, upto)
    if upto < end:
        hub.queue.send([ContinueMessage(run_id=run_id, start=upto)])
        logger.info("run %s: %d target(s) left to enqueue, continued through the queue", run_id, end - upto)
    return sent


def dispatch(hub: Hub, record: dict[str, Any], start: int, remaining_seconds: Callable[[], float] | None) -> int:
    """Queue the run's messages from ``start`` to the end of their wave; or, the run stopped, record
    every one from ``start`` on skipped. Returns how many were handled."""
    run_id = str(record["run_id"])
    messages = TargetMessages(record, hub.store.plan_targets(run_id, int(record["plan_buckets"])))
    if not record.get("stopped"):
        return _enqueue(hub, run_id, messages, start, rollout.part_end(record, start, len(messages)), remaining_seconds)
    handled = rollout.skip_part(hub, record, messages, start, remaining_seconds)
    upto = start + handled
    hub.store.set_enqueued(run_id, upto)
    if upto < len(messages):
        hub.queue.send([ContinueMessage(run_id=run_id, start=upto)])
    elif handled:
        complete_if_done(hub, run_id)
    return handled


def continue_queueing(hub: Hub, message: ContinueMessage, remaining_seconds: Callable[[], float] | None) -> int:
    """Enqueue the next part of a queued run (a :class:`ContinueMessage`), or record it skipped when the
    run stopped; a message for a part already taken (delivered twice, or stale) sends nothing. Returns
    how many target messages were handled."""
    record = hub.store.get_run_record(message.run_id)
    if record is None or "queued" not in record:
        raise UnknownRun(f"no queued run {message.run_id!r} is recorded")
    if not hub.store.claim_enqueueing(message.run_id, message.start):
        logger.info("run %s: the part from %d is taken already", message.run_id, message.start)
        return 0
    try:
        record = hub.store.get_run_record(message.run_id) or record  # stopped since? then it is skipped
        sent = dispatch(hub, record, message.start, remaining_seconds)
    except Exception:
        hub.store.release_enqueueing(message.run_id, message.start)  # the retry of this message takes it
        raise
    if sent == 0:
        hub.store.release_enqueueing(message.run_id, message.start)  # the continue message sent again takes it
    return sent


def complete_if_done(
    hub: Hub,
    run_id: str,
    remaining_seconds: Callable[[], float] | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    """Once every target of the run is done, mark it completed and send its one completion event with
    the summary. The counter says when to look; the targets' markers decide; the store's conditional
    update lets one worker through. An event EventBridge refuses un-marks the run and raises: the
    message's retry sends it. A guarded run's waves and max_failures are looked at first
    (:func:`rolechain.hub.rollout.check`). ``progress``: as counting the last target left it (read
    unless given)."""
    fresh = progress is None
    progress = progress if progress is not None else hub.store.progress(run_id)
    if rollout.check(hub, run_id, progress, remaining_seconds, fresh=fresh):
        progress = hub.store.progress(run_id)
    if int(progress.get("target_count", 0)) - int(progress.get("targets_done", 0)) > 0:
        return False  # the counter says targets are left: nothing to read yet
    done, summary = hub.store.done_targets(run_id)  # the facts: every target's marker
    record = hub.store.get_run_record(run_id)
    if record is None or done < int(record.get("target_count", 0)) or "completed_at" in record:
        return False
    record = hub.store.claim_completion(run_id, datetime.now(UTC).isoformat())
    if record is None:
        return False  # another worker completed it first
    detail = {
        "run_id": run_id,
        "job": record.get("job"),
        "action": record.get("action"),
        "dry_run": record.get("dry_run"),
        "mode": record.get("mode"),
        "requested_by": record.get("requested_by"),
        "target_count": record.get("target_count"),
        "summary": summary,
        **({"stopped": record["stopped"]} if record.get("stopped") else {}),
        **({"waves": record["waves"]} if record.get("waves") else {}),
        "created_at": record.get("created_at"),
        "completed_at": record.get("completed_at"),
    }
    try:
        hub.events.run_completed(detail)
    except Exception:
        hub.store.release_completion(run_id)
        raise
    logger.info("run %s completed: %s", run_id, summary)
    return True


def create_run(
    hub: Hub, request: RunRequest, caller: Caller, *, remaining_seconds: Callable[[], float] | None = None
) -> dict[str, Any]:
    """POST /runs, once the job file's ``api`` rules allow ``caller`` the planned run.

    Raises:
        Forbidden: accounts/roles outside the configuration, or a run the caller is not granted.
        ConfigError: a malformed request. NotFound: an unknown job.
    """
    if not matching_rules(hub.job_file.api, caller.arn):
        # refused before planning: a caller no rule names makes the hub read nothing (not even the ExternalId)
        raise Forbidden(f"{caller.arn} is not allowed any run (no api rule of the job file names this caller)")
    rerun_of, only = None, None
    if request.rerun is not None:
        rerun_of = request.rerun.run_id
        request, only = _rerun_request(hub, request, request.rerun, caller)
    if (request.job is None) == (request.action is None):
        raise ConfigError("body", "give exactly one of 'job', 'action' or 'rerun'")
    allowed = hub.job_file.target_accounts(hub.targets_of)
    outside = sorted(set(request.accounts or ()) - allowed)
    if outside:
        raise Forbidden(f"accounts outside the configured targets: {', '.join(outside)}")
    if request.role_name is not None and request.role_name not in hub.job_file.role_names():
        raise Forbidden(f"role {request.role_name!r} is not a configured target role")
    accounts = _requested_accounts(hub, request, allowed)
    run_id = new_run_id()
    if request.job is not None:
        if request.job not in hub.job_file.jobs:
            raise NotFound(f"no job {request.job!r}")
        if request.params is not None or request.regions is not None or request.role_name is not None:
            raise ConfigError("body", "params, regions and role_name go with 'action', not 'job'")
        if accounts is not None and request.ous is not None:
            accounts = _within_job(hub, request.job, accounts, named=request.accounts or ())
        plan = _only(_job_plan(hub, request.job, caller, accounts, request.dry_run), only, rerun_of)
        authorize_run(
            hub.job_file.api, caller.arn, RunScope.of(plan, dry_run_by_default=hub.job_file.jobs[request.job].dry_run)
        )
        return start(hub, plan, run_id, caller, remaining_seconds, rerun_of=rerun_of)
    if not accounts:
        raise ConfigError("accounts", "required with 'action' (accounts, ous, or both)")
    defaults = hub.job_file.defaults
    settings = defaults.model_copy(update={"role_name": request.role_name}) if request.role_name else defaults
    plan = plan_run(
        hub.sessions,
        settings,
        PlanRequest(
            action=request.action,
            params=request.params,
            accounts=accounts,
            regions=request.regions,
            dry_run=request.dry_run,
            source_identity=caller.source_identity,
            session_tags=caller.session_tags,
        ),
    )
    plan = _only(plan, only, rerun_of)
    authorize_run(hub.job_file.api, caller.arn, RunScope.of(plan, dry_run_by_default=settings.dry_run))
    return start(hub, plan, run_id, caller, remaining_seconds, rerun_of=rerun_of)


def _requested_accounts(hub: Hub, request: RunRequest, allowed: set[str]) -> list[str] | None:
    """The accounts a request names: its ``accounts``, then its OUs' accounts read live from
    Organizations, less ``exclude_accounts`` (None: it names none). An OU reaching an account outside
    the configured targets is refused, as that account named by itself would be."""
    if request.accounts is None and request.ous is None:
        if request.exclude_accounts:
            raise ConfigError("exclude_accounts", "goes with accounts or ous")
        return None
    accounts = list(request.accounts or ())
    if request.ous is not None:
        organization = OrganizationTargets(ous=request.ous, role=_organization_role(hub))
        found = hub.targets_of(Targets(organization=organization), "ous")
        outside = set(found) - allowed
        if outside:  # how many, not which: a caller may not learn an OU's members this way
            raise Forbidden(f"ous reach {len(outside)} account(s) outside the configured targets")
        accounts += [a for a in found if a not in set(accounts)]
    unwanted = set(request.exclude_accounts or ())
    kept = [a for a in accounts if a not in unwanted]
    if not kept:
        raise ConfigError("ous" if request.ous else "accounts", "names no account once exclude_accounts applied")
    return kept


def _organization_role(hub: Hub) -> str | None:
    """How the job file reads Organizations: the one role its organisation targets name (None: the base
    credentials). Jobs naming different roles leave an OU of a request ambiguous: refused."""
    roles = {
        job.targets.organization.role for job in hub.job_file.jobs.values() if job.targets.organization is not None
    }
    if len(roles) > 1:
        raise ConfigError(
            "ous", "the job file reads Organizations through different roles, so an OU is ambiguous: give accounts"
        )
    return next(iter(roles), None)


def _within_job(hub: Hub, job: str, accounts: list[str], *, named: Sequence[str]) -> list[str]:
    """``accounts`` that job ``job`` targets, and those ``named`` by themselves (the job's plan refuses
    those outside it): OUs narrow a job's run to their accounts, never widen it."""
    targets = set(hub.targets_of(hub.job_file.jobs[job].targets, f"jobs.{job}.targets")) | set(named)
    kept = [a for a in accounts if a in targets]
    if not kept:
        raise ConfigError("ous", f"none of the accounts they name is a target of job {job!r}")
    return kept


def _rerun_request(
    hub: Hub, request: RunRequest, rerun: Rerun, caller: Caller
) -> tuple[RunRequest, set[tuple[str, str]]]:
    """The request that starts run ``rerun.run_id`` again (its job, or its action, params and role)
    over the accounts of its targets that ended in ``rerun.statuses``, and those targets.

    Raises:
        NotFound: no such run, or one the caller may not read (alike). ConfigError: a rerun with other
        fields than ``dry_run``, no target in those statuses, or an old ad-hoc run recorded no plan.
    """
    given = request.model_dump(exclude_none=True, exclude={"rerun", "dry_run"})
    if given:
        raise ConfigError(
            "rerun", f"runs the old run's job or action again: {', '.join(sorted(given))} cannot go with it"
        )
    old_id = rerun.run_id
    record = hub.store.get_run_record(old_id)
    if record is None or not may_read(hub.job_file.api, caller.arn, record.get("requested_by")):
        raise NotFound(f"no run {old_id!r}")
    targets: set[tuple[str, str]] = set()
    for status in rerun.statuses:
        targets.update(
            (r["account"], r["region"]) for r, _ in hub.store.query_results(old_id, status=status, start_key=None)
        )
    if not targets:
        raise ConfigError("rerun", f"no target of run {old_id!r} ended {' or '.join(rerun.statuses)}")
    accounts = sorted({account for account, _ in targets})
    dry_run = bool(record["dry_run"]) if request.dry_run is None else request.dry_run
    if record.get("job"):
        return RunRequest(job=record["job"], accounts=accounts, dry_run=dry_run), targets
    planned = record.get("planned") or record.get("queued")
    if planned is None:
        raise ConfigError("rerun", f"run {old_id!r} recorded no plan to run again")
    plan = QueuedPlan.model_validate(planned)
    again = RunRequest(
        action=record["action"],
        params=plan.params,
        accounts=accounts,
        regions=sorted({region for _, region in targets}),
        role_name=plan.role.role_name,
        dry_run=dry_run,
    )
    return again, targets


def _only(plan: RunPlan, targets: set[tuple[str, str]] | None, rerun_of: str | None) -> RunPlan:
    """``plan`` over only ``targets`` (a rerun's; a target of region "all" stays for an account any of
    them names: its regions are found again). Raises ConfigError when none is left."""
    if targets is None:
        return plan
    accounts = {account for account, _ in targets}
    kept = [
        t for t in plan.targets if (t.account, t.region) in targets or (t.region == "all" and t.account in accounts)
    ]
    if not kept:
        raise ConfigError("rerun", f"no target of run {rerun_of!r} is still a target of its job")
    return replace(plan, targets=kept)


def run_status(record: dict[str, Any]) -> str:
    """A run's status from its record: ``completed`` (marked so, or every target counted), ``queued``
    (queued, no target counted yet) or ``running``."""
    done, expected = int(record.get("targets_done", 0)), int(record.get("target_count", 0))
    if "completed_at" in record or (done >= expected and "targets_done" in record):
        return "completed"
    return "queued" if record.get("mode") == "queued" and done == 0 else "running"


def run_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A run as GET /runs lists it: what it is, who asked, when, and its counters."""
    return {
        "run_id": record["run_id"],
        "job": record.get("job"),
        "action": record.get("action"),
        "status": run_status(record),
        "mode": record.get("mode"),
        "dry_run": bool(record.get("dry_run")),
        "requested_by": record.get("requested_by"),
        "created_at": record.get("created_at"),
        "completed_at": record.get("completed_at"),
        "target_count": int(record.get("target_count", 0)),
        "counts": {str(s): int(record.get(f"count_{s}", 0)) for s in Status},
    }


def list_runs(hub: Hub, query: RunListQuery, caller: Caller) -> dict[str, Any]:
    """GET /runs: the runs ``caller`` may read, newest first, one page of ``query.limit``.

    A caller granted ``read_all`` pages through every run, anyone else through the runs they requested
    (an index partitioned by requester, so nobody else's runs are read at all). ``next_token`` is sealed
    with the query it belongs to (:mod:`rolechain.hub.tokens`).

    Raises:
        ConfigError: (``next_token``) a token this API did not issue for this caller and these filters.
    """
    everyone = may_read_all(hub.job_file.api, caller.arn)
    bound = {"route": "runs", "caller": caller.arn, "all": everyone, "job": query.job, "status": query.status}
    start = hub.tokens.open(query.next_token, bound) if query.next_token else None
    partition = None if everyone else caller.arn
    if start is not None and start.get("requested_by" if partition else "list_pk", {}).get("S") != (
        partition or RUNS_PARTITION
    ):
        raise ConfigError("next_token", "belongs to another query (repeat the filters it came with)")
    page: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    more = False
    # one more than a page tells whether another follows; a status is filtered here, so read more
    size = query.limit + 1 if query.status is None else 100
    for record, key in _from(hub.store.query_runs, start, requested_by=partition, job=query.job, page_size=size):
        if not may_read(hub.job_file.api, caller.arn, record.get("requested_by")):
            continue  # the index decides already; checked again per run (fail closed)
        summary = run_summary(record)
        if query.status is not None and summary["status"] != query.status:
            continue
        if len(page) == query.limit:
            more = True
            break
        page.append(summary)
        last = key
    token = hub.tokens.seal(bound, last) if more and last is not None else None
    return {"runs": page, "next_token": token}


def _from(query: Callable[..., Any], start: dict[str, Any] | None, **kwargs: Any) -> Any:
    """``query(start_key=start, **kwargs)``; a position DynamoDB refuses is a bad ``next_token``."""
    try:
        yield from query(start_key=start, **kwargs)
    except ClientError as exc:
        if start is not None and exc.response.get("Error", {}).get("Code") == "ValidationException":
            raise ConfigError("next_token", "does not name a position of this query") from None
        raise


def get_run(hub: Hub, run_id: str, caller: Caller, query: ResultQuery | None = None) -> dict[str, Any]:
    """GET /runs/{id}: the run, its summary and one page of its results (``query``: a status, a page
    size, where to go on), for its requester or a caller granted ``read_all``.

    Raises:
        NotFound: a missing run and, alike, another caller's (its existence is not disclosed).
        ConfigError: (``next_token``) a token this API did not issue for this run, caller and status.
    """
    query = query or ResultQuery()
    record = hub.store.get_run_record(run_id)
    if record is None or not may_read(hub.job_file.api, caller.arn, record.get("requested_by")):
        raise NotFound(f"no run {run_id!r}")
    bound = {"route": "results", "run_id": run_id, "caller": caller.arn, "status": query.status}
    start = hub.tokens.open(query.next_token, bound) if query.next_token else None
    if start is not None and start.get("pk", {}).get("S") != f"run#{run_id}":
        raise ConfigError("next_token", "belongs to another query (repeat the filters it came with)")
    results: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    more = False
    size = query.limit + 1
    budget = PAGE_BYTES  # a Lambda answer is at most 6 MB: a page of large outputs ends sooner
    for result, key in _from(hub.store.query_results, start, run_id=run_id, status=query.status, page_size=size):
        budget -= len(json.dumps(result, default=str))
        if len(results) == query.limit or (results and budget < 0):
            more = True
            break
        results.append(result)
        last = key
    run = {k: v for k, v in record.items() if not k.startswith("count_") and k not in INTERNAL_KEYS}
    summary = run_summary(record)
    return {
        **run,
        "status": summary["status"],
        "summary": summary["counts"],
        "results": results,
        "next_token": hub.tokens.seal(bound, last) if more and last is not None else None,
    }


def list_actions(hub: Hub) -> list[dict[str, Any]]:
    return [REGISTRY[name].describe() for name in sorted(REGISTRY)]


def list_jobs(hub: Hub) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "action": job.action,
            "description": job.description,
            "accounts": job.targets.resolve(),
            "organization": job.targets.organization.model_dump() if job.targets.organization else None,
            "regions": job.regions,
            "schedule": job.schedule,
            "dry_run": job.dry_run,
        }
        for name, job in sorted(hub.job_file.jobs.items())
    ]
