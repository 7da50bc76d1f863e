"""The ``studio`` command. The worker runs as its own process, so this module never imports it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.settings import QUEUES, get_settings

app = typer.Typer(help="Annotation-to-model studio.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _worker_argv(queues: str, name: str | None, loglevel: str) -> list[str]:
    for q in queues.split(","):
        if q not in QUEUES:
            raise typer.BadParameter(
                f"unknown queue {q!r}; queues are {', '.join(QUEUES)}", param_hint="--queues"
            )
    hostname = name or f"worker-{queues.replace(',', '-')}-{os.getpid()}@{socket.gethostname()}"
    # solo pool: one job at a time in this process, so a kill of the process is a kill of the job
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "-Q",
        queues,
        "-n",
        hostname,
        "--pool",
        "solo",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


@app.command()
def migrate() -> None:
    """Apply database migrations (run before start by `studio up`)."""
    from backend.db.migrate import upgrade

    upgrade()
    typer.echo(f"database at head: {get_settings().database_url.split('@')[-1]}")


@app.command()
def serve(
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")
    ] = True,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    log_level: str = "info",
) -> None:
    """Serve the API and the browser UI."""
    import uvicorn

    if migrate_first:
        migrate()
    settings = get_settings()
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=log_level,
        proxy_headers=False,
    )


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated: cpu, gpu")] = "cpu,gpu",
    name: Annotated[str | None, typer.Option(help="Worker name (default: from queues and pid)")] = None,
    loglevel: str = "INFO",
) -> None:
    """Run a worker that consumes the given queues."""
    argv = _worker_argv(queues, name, loglevel)
    os.execv(argv[0], argv)  # noqa: S606 - replaces this process with the worker; no shell involved


@app.command()
def up(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    queues: str = "cpu,gpu",
) -> None:
    """Migrate, then run the API and one worker on this machine."""
    migrate()
    settings = get_settings()
    proc = subprocess.Popen(_worker_argv(queues, None, "INFO"))  # noqa: S603 - our own argv, no shell
    typer.echo(
        f"worker started (pid {proc.pid}); studio on http://{host or settings.host}:{port or settings.port}"
    )
    try:
        serve(migrate_first=False, host=host, port=port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _user_by_email(session: Any, email: str) -> Any:
    from sqlalchemy import select

    from backend.auth.service import normalise_email
    from backend.db.tables import User

    user = session.scalars(select(User).where(User.email == normalise_email(email))).one_or_none()
    if user is None:
        typer.echo(f"error: no user with email {email} (create one with `studio user create`)", err=True)
        raise typer.Exit(1)
    return user


@app.command("import")
def import_dataset(
    path: Annotated[Path, typer.Argument(exists=True, help="A project folder or a zip of it")],
    user: Annotated[str, typer.Option("--user", help="Email of the dataset's owner")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name)")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, labelme, folder, filelist, coco, voc, icdar")
    ] = "auto",
    seed: int = 0,
) -> None:
    """Import a dataset from the shell, as an upload in the browser would (no worker needed)."""
    from rich.progress import Progress

    from backend.datasets.canonical import ImportFailed
    from backend.datasets.service import FORMAT_CHOICES, land_import
    from backend.db.session import session_scope
    from backend.db.tables import Dataset

    if fmt not in FORMAT_CHOICES:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMAT_CHOICES)}", param_hint="--format")
    settings = get_settings()
    with session_scope() as session:
        owner = _user_by_email(session, user)
        row = Dataset(
            owner_id=owner.id, name=(name or path.stem)[:200], status="importing", source_format=fmt
        )
        session.add(row)
        session.flush()
        dataset_id = row.id
    with Progress(transient=True) as bar:
        task = bar.add_task("importing", total=1.0)
        try:
            landed = land_import(
                settings,
                dataset_id,
                path.resolve(),
                path.name,
                fmt,
                seed=seed,
                staging_name=f"cli-import-{dataset_id}",
                progress=lambda f, m: bar.update(task, completed=f, description=m),
            )
        except ImportFailed as exc:
            for finding in exc.report.findings:
                typer.echo(f"{finding.level}: {finding.message}", err=True)
            raise typer.Exit(1) from exc
    for finding in landed.report.warnings:
        typer.echo(f"warning: {finding.message}", err=True)
    typer.echo(
        f"dataset {dataset_id}: {len(landed.dataset.images)} images, classes {landed.dataset.classes}, "
        f"tasks {[str(t) for t in landed.dataset.tasks]}"
    )


@app.command("export")
def export_dataset(
    dataset_id: int,
    user: Annotated[str, typer.Option("--user", help="Email of the dataset's owner")],
    fmt: Annotated[str, typer.Option("--format", help="voc, coco or imagenet")] = "voc",
    out: Annotated[Path | None, typer.Option(help="Zip to write (default: NAME-vN-FORMAT.zip here)")] = None,
) -> None:
    """Export a dataset to Pascal VOC, COCO or ImageNet folders, as a zip."""
    import shutil

    from rich.progress import Progress

    from backend.auth.scope import get_owned
    from backend.datasets.export import build_export_zip
    from backend.datasets.service import load_canonical
    from backend.db.session import session_scope
    from backend.db.tables import Dataset
    from backend.errors import StudioError

    if fmt not in ("voc", "coco", "imagenet"):
        raise typer.BadParameter(f"{fmt!r} is not one of voc, coco, imagenet", param_hint="--format")
    try:
        with session_scope() as session:
            owner = _user_by_email(session, user)
            row = get_owned(session, Dataset, dataset_id, owner.id, "dataset")
            ds, folder, label = load_canonical(row), Path(str(row.path)), f"{row.name}-v{row.version}"
    except StudioError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    with Progress(transient=True) as bar:
        bar.add_task(f"exporting {fmt}", total=None)
        try:
            made = build_export_zip(fmt, ds, folder, folder / ".cache" / "exports")
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    target = out or Path(f"{label}-{fmt}.zip".replace("/", "_"))
    shutil.copyfile(made, target)
    typer.echo(f"wrote {target}")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A run config (YAML)")],
    user: Annotated[str, typer.Option("--user", help="Email of the run's owner")],
) -> None:
    """Train from a YAML run config (as the browser's form would), recorded as a job of that user."""
    argv = _train_argv(config, user)
    os.execv(argv[0], argv)  # noqa: S606 - replaces this process with the trainer; no shell involved


def _train_argv(config: Path, user: str) -> list[str]:
    # The trainer needs torch, so it lives in the worker package; this module never imports it.
    return [sys.executable, "-m", "worker.train_cli", str(config), "--user", user]


@user_app.command("create")
def user_create(
    email: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True, confirmation_prompt=True, hide_input=True, envvar="STUDIO_NEW_USER_PASSWORD"
        ),
    ],
) -> None:
    """Create a user (the password is asked for, or read from STUDIO_NEW_USER_PASSWORD)."""
    from pydantic import ValidationError

    from backend.auth.schemas import Credentials
    from backend.auth.service import create_user
    from backend.db.session import session_scope
    from backend.errors import StudioError

    try:
        creds = Credentials(email=email, password=password)
        with session_scope() as session:
            user = create_user(session, creds.email, creds.password)
            uid = user.id
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    except StudioError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created user {uid} <{creds.email}>")


if __name__ == "__main__":
    app()
