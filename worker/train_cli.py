"""``python -m worker.train_cli CONFIG.yaml --user EMAIL``: train in this process, recorded like any job.

The run is a real job row (kind "train"), leased by a local worker name and run through the same runner
and handler as in a worker, so it has metrics, a lease heartbeat, resumable checkpoints and a model row.
It is never sent to the broker; if this process dies, the reaper re-queues it and a worker resumes it.
Ctrl-C asks the job to cancel, as the Cancel button would."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Job, JobStatus, User
from backend.jobs.events import append_event, status_event
from backend.jobs.lifecycle import request_cancel
from backend.specs.config import from_yaml


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio train", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="A run config (YAML), as exported from the studio")
    parser.add_argument("--user", required=True, help="Email of the user the run belongs to")
    parser.add_argument("--quiet", action="store_true", help="No progress bar")
    return parser.parse_args(argv)


def create_local_job(email: str, config: dict[str, Any]) -> int:
    """A queued train job owned by ``email``'s user, not sent to any broker (this process runs it)."""
    from backend.auth.service import normalise_email

    with session_scope() as session:
        user = session.scalars(select(User).where(User.email == normalise_email(email))).one_or_none()
        if user is None:
            raise LookupError(f"no user with email {email} (create one with `studio user create`)")
        kinds = _job_kinds()
        if kinds is not None and kinds.check is not None:
            kinds.check(session, user, kinds.parse(config))
        job = Job(owner_id=user.id, kind="train", queue="training", config=config, status=JobStatus.queued)
        session.add(job)
        session.flush()
        append_event(session, job.id, "status", status_event(job))
        return int(job.id)


def _job_kinds() -> Any:
    """The API's own checks of a train config (owner's dataset, classes, options), when it has them."""
    from backend.jobs.kinds import JOB_KINDS

    return JOB_KINDS.get("train")


def _watch(job_id: int, done: threading.Event, quiet: bool) -> None:
    """Draw the job's progress from its row until ``done``: the same numbers the browser shows."""
    if quiet:
        done.wait()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]train[/]"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"))
    with Progress(*columns, TimeElapsedColumn(), TextColumn("{task.description}")) as bar:
        task = bar.add_task("starting", total=1.0)
        finished = False
        while not finished:
            finished = done.wait(0.5)
            with session_scope() as session:
                job = session.get(Job, job_id)
                if job is not None:
                    bar.update(task, completed=job.progress, description=job.message or "")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        config = from_yaml(args.config.read_text())
    except (OSError, ValueError, ValidationError) as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    from backend.errors import StudioError

    try:
        job_id = create_local_job(args.user, config.model_dump(mode="json"))
    except StudioError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worker = f"local-{os.getpid()}@{socket.gethostname()}"
    print(f"job {job_id}: training {config.model.architecture} on dataset {config.data.dataset_id}")

    from worker.runner import run_job

    outcome: dict[str, str] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["status"] = run_job(job_id, worker)
        finally:
            done.set()

    runner = threading.Thread(target=run, name=f"train-{job_id}")
    runner.start()
    try:
        _watch(job_id, done, args.quiet)
    except KeyboardInterrupt:
        print("cancelling…", file=sys.stderr)
        with session_scope() as session:
            job = session.get(Job, job_id)
            if job is not None:
                request_cancel(session, job)
    while runner.is_alive():
        runner.join(0.5)
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None  # noqa: S101 - created above
        status, result, error = job.status, job.result or {}, job.error
    if status != JobStatus.succeeded:
        print(f"job {job_id} {status}: {error}", file=sys.stderr)
        return 1
    from backend.tasks import get_task

    headline = get_task(config.task).headline  # the figure a model of this task is judged by first
    value = (result.get("final") or {}).get(headline)
    score = f", val {headline} {100 * value:.1f}%" if isinstance(value, int | float) else ""
    print(f"job {job_id} succeeded: model {result.get('model_id')}{score} in {result.get('seconds')} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
