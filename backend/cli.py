"""The ``studio`` command. The worker runs as its own process, so this module never imports it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Annotated

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
