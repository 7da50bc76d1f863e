"""The ``studio`` command. The worker runs as its own process, so this module never imports it."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.settings import LANES, get_settings

# Plain help (click's layout): the rich one labels every flag, --help included, as taking a "<bool>".
app = typer.Typer(
    help="Annotation-to-model studio.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(token_app, name="token")


def _check_lanes(value: str, hint: str) -> tuple[str, ...]:
    lanes = tuple(v.strip() for v in value.split(",") if v.strip())
    for lane in lanes:
        if lane not in LANES:
            raise typer.BadParameter(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}", param_hint=hint)
    return lanes


def _supervise(lanes: tuple[str, ...]) -> Any:
    from backend.supervisor import Supervisor, lane_slots

    settings = get_settings()
    supervisor = Supervisor(lane_slots(settings, lanes), settings)
    supervisor.start()
    for slot in supervisor.slots:
        typer.echo(f"{slot.lane} lane: {slot.name} (pid {slot.proc.pid if slot.proc else '-'})")
    return supervisor


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
    lane: Annotated[
        str | None, typer.Option(help="Run a lane's workers, supervised: training, light, inference")
    ] = None,
    queues: Annotated[
        str | None, typer.Option(help="Instead: one unsupervised worker on these comma-separated lanes")
    ] = None,
    name: Annotated[str | None, typer.Option(help="With --queues: the worker's name")] = None,
    pool: Annotated[str, typer.Option(help="With --queues: solo (one job at a time) or threads")] = "solo",
    concurrency: Annotated[int, typer.Option(help="With --queues --pool threads: requests at once")] = 16,
    loglevel: str = "INFO",
) -> None:
    """Run workers. ``--lane`` runs the lane's processes (as many as its settings say) and restarts any
    that ends; ``--queues`` runs one plain worker process in the foreground."""
    if (lane is None) == (queues is None):
        raise typer.BadParameter("give --lane or --queues (one of them)", param_hint="--lane")
    if queues is not None:
        from backend.supervisor import worker_argv

        chosen = _check_lanes(queues, "--queues")
        hostname = name or f"worker-{'-'.join(chosen)}-{os.getpid()}@{socket.gethostname()}"
        argv = worker_argv(",".join(chosen), hostname, loglevel, pool, concurrency)
        os.execv(argv[0], argv)  # noqa: S606 - replaces this process with the worker; no shell involved
    supervisor = _supervise(_check_lanes(str(lane), "--lane"))

    def stop(signum: int, _frame: Any) -> None:
        if supervisor.stopping:  # a second signal: stop at once
            supervisor.kill_now()
        else:
            supervisor.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor.wait()


@app.command()
def up(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    lanes: Annotated[str, typer.Option(help="Lanes to run workers for")] = ",".join(LANES),
) -> None:
    """Migrate, then run the API and the workers of every lane on this machine, restarting any that ends."""
    migrate()
    settings = get_settings()
    supervisor = _supervise(_check_lanes(lanes, "--lanes"))
    typer.echo(f"studio on http://{host or settings.host}:{port or settings.port}")

    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    # uvicorn shuts down on SIGTERM, then raises the signal again under the handler it found: this one, so
    # the workers are stopped below instead of the process dying with them still running.
    signal.signal(signal.SIGTERM, leave)
    try:
        serve(migrate_first=False, host=host, port=port)
    finally:
        # While the workers stop warm (each running job gives itself back), a second Ctrl-C or SIGTERM
        # stops them at once; their jobs are taken back all the same.
        typer.echo("stopping: the running jobs go back to their queues (Ctrl-C again to stop at once)")
        signal.signal(signal.SIGTERM, lambda *_: supervisor.kill_now())
        signal.signal(signal.SIGINT, lambda *_: supervisor.kill_now())
        supervisor.stop()


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
    skip_bad_shapes: Annotated[
        bool,
        typer.Option(
            "--skip-bad-shapes",
            help="Leave out each shape with an error (listed) instead of failing the import",
        ),
    ] = False,
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
                skip_bad_shapes=skip_bad_shapes,
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
    fmt: Annotated[str, typer.Option("--format", help="voc, coco, imagenet or icdar")] = "voc",
    out: Annotated[Path | None, typer.Option(help="Zip to write (default: NAME-vN-FORMAT.zip here)")] = None,
) -> None:
    """Export a dataset as a zip: Pascal VOC or COCO (any dataset), ImageNet folders (classification),
    ICDAR 2015 files (text detection)."""
    import shutil

    from rich.progress import Progress

    from backend.auth.scope import get_owned
    from backend.datasets.export import build_export_zip, export_cache_dir
    from backend.datasets.service import load_canonical
    from backend.db.session import session_scope
    from backend.db.tables import Dataset
    from backend.errors import StudioError
    from backend.tasks import get_export_format

    try:
        layout = get_export_format(fmt)
    except KeyError as exc:
        raise typer.BadParameter(exc.args[0], param_hint="--format") from None
    try:
        with session_scope() as session:
            owner = _user_by_email(session, user)
            row = get_owned(session, Dataset, dataset_id, owner.id, "dataset")
            ds, folder, label = load_canonical(row), Path(str(row.path)), f"{row.name}-v{row.version}"
            refusal = layout.refusal(row.tasks or [])
    except StudioError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    if refusal is not None:
        typer.echo(f"error: {refusal}", err=True)
        raise typer.Exit(1)
    with Progress(transient=True) as bar:
        bar.add_task(f"exporting {fmt}", total=None)
        try:
            made = build_export_zip(layout, ds, folder, export_cache_dir(folder))
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


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Email of the token's owner")],
    name: Annotated[str, typer.Option(help="What the token is for, shown on the Tokens page")] = "shell",
) -> None:
    """Create an API token and print it alone on stdout (it is shown once):
    TOKEN=$(studio token create --user you@example.com)."""
    from pydantic import ValidationError

    from backend.auth.schemas import TokenCreate
    from backend.auth.service import create_api_token
    from backend.db.session import session_scope

    try:
        body = TokenCreate(name=name)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--name") from None
    with session_scope() as session:
        owner = _user_by_email(session, user)
        row, token = create_api_token(session, owner, body.name)
        typer.echo(f"token {row.id} ({row.name}) for {owner.email}", err=True)
    typer.echo(token)


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
