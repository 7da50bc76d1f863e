"""Fixtures on real components: SQLite files and the machine's PostgreSQL, the filesystem broker and Redis,
worker processes started and killed for real."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from backend.db.migrate import upgrade
from backend.db.tables import Base
from backend.ratelimit import _limiter
from backend.settings import get_settings

POSTGRES_URL = os.environ.get("STUDIO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("STUDIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent

# Fast timings for tests; production defaults are in backend/settings.py.
# The tests never reach the network for weights: a run that asks for pretrained weights finds the file a
# test saved in the torch hub cache, or fails naming it; defaults leave pretrained off. Processes the
# tests start inherit it.
os.environ["STUDIO_OFFLINE"] = "1"

FAST_ENV = {
    "STUDIO_HEARTBEAT_SECONDS": "0.5",
    "STUDIO_HEARTBEAT_TIMEOUT_SECONDS": "10",
    "STUDIO_REAPER_INTERVAL_SECONDS": "0.5",
    "STUDIO_CANARY_INTERVAL_SECONDS": "0.5",
    "STUDIO_CANARY_RETRY_SECONDS": "2",
    "STUDIO_WORKER_LIVE_SECONDS": "5",
    "STUDIO_EVENTS_POLL_SECONDS": "0.1",
    "STUDIO_BROKER_POLLING_SECONDS": "0.05",
}


@dataclass(frozen=True)
class Stack:
    """Which database and broker a test runs on."""

    database: str
    broker: str
    data_dir: Path
    database_url: str
    broker_url: str

    @property
    def id(self) -> str:
        return f"{self.database}-{self.broker}"

    def env(self) -> dict[str, str]:
        env = {
            "STUDIO_DATA_DIR": str(self.data_dir),
            "STUDIO_DATABASE_URL": self.database_url,
            "STUDIO_BROKER_URL": self.broker_url,
            **FAST_ENV,
        }
        if self.broker == "filesystem":
            env["STUDIO_REDIS_URL"] = ""
        return env


_migrated_template: dict[str, Path] = {}
_run_database: dict[str, str] = {}


def _postgres_run_url() -> str:
    """A database of this test run's own on the machine's PostgreSQL, so runs side by side never meet;
    dropped when the run ends."""
    if "url" not in _run_database:
        name = f"studio_test_{os.getpid()}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        _run_database["url"] = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        _run_database["name"] = name
    return _run_database["url"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    name = _run_database.get("name")
    if name is None:
        return
    from backend.db.session import engine_for

    engine_for(_run_database["url"]).dispose()
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _sqlite_db(tmp: Path, template_dir: Path) -> str:
    template = template_dir / "template.db"
    if not template.exists():
        upgrade(f"sqlite:///{template}")
    target = tmp / "studio.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


def _postgres_db() -> str:
    url = _postgres_run_url()
    engine = create_engine(url)
    if "postgres" not in _migrated_template:
        upgrade(url)
        _migrated_template["postgres"] = Path()
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def make_stack(database: str, broker: str, tmp: Path, template_dir: Path) -> Stack:
    tmp.mkdir(parents=True, exist_ok=True)
    db_url = _sqlite_db(tmp, template_dir) if database == "sqlite" else _postgres_db()
    if broker == "redis":
        _flush_redis()
    broker_url = "filesystem://" if broker == "filesystem" else REDIS_URL
    return Stack(database, broker, tmp / "data", db_url, broker_url)


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


def _activate(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    for key, value in stack.env().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    _limiter.cache_clear()
    return stack


@pytest.fixture(params=["sqlite", "postgres"])
def db_stack(
    request: pytest.FixtureRequest, tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """A migrated, empty database (SQLite and PostgreSQL) with the filesystem broker."""
    yield _activate(make_stack(request.param, "filesystem", tmp_path, template_dir), monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def sqlite_stack(tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    yield _activate(make_stack("sqlite", "filesystem", tmp_path, template_dir), monkeypatch)
    get_settings.cache_clear()


FULL_STACKS = [("sqlite", "filesystem"), ("postgres", "redis")]


@pytest.fixture(params=FULL_STACKS, ids=[f"{d}-{b}" for d, b in FULL_STACKS])
def full_stack(
    request: pytest.FixtureRequest, tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """Database and broker pairs the worker tests run on: SQLite + filesystem, PostgreSQL + Redis."""
    database, broker = request.param
    yield _activate(make_stack(database, broker, tmp_path, template_dir), monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The API in-process (lifespan included) on whichever stack fixture the test asked for."""
    for name in ("full_stack", "db_stack", "sqlite_stack"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    else:
        request.getfixturevalue("sqlite_stack")
    from backend.app import create_app

    with TestClient(create_app()) as c:
        yield c


class WorkerProcess:
    """A real ``studio worker`` process, killable with a real signal."""

    def __init__(
        self, stack: Stack, log_dir: Path, queues: str = "training,light,inference", pool: str = "solo"
    ) -> None:
        self.name = f"w{uuid.uuid4().hex[:6]}@test"
        env = {**os.environ, **stack.env(), "PYTHONUNBUFFERED": "1"}
        self.log = log_dir / f"{self.name}.log"
        self._fh = self.log.open("wb")
        argv = ["worker", "--queues", queues, "--name", self.name, "--pool", pool]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *argv],
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    workers: list[WorkerProcess] = []

    def start(stack: Stack, queues: str = "training,light,inference", pool: str = "solo") -> WorkerProcess:
        w = WorkerProcess(stack, tmp_path, queues, pool)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for w in workers:
            print(f"--- {w.name} ---\n{w.output()[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class StudioUp:
    url: str
    env: dict[str, str]  # what `studio` commands need to reach the same data, database and broker


@pytest.fixture(scope="session")
def studio_url(studio_up: StudioUp) -> str:
    return studio_up.url


@pytest.fixture(scope="session")
def studio_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioUp]:
    """A whole studio (`studio up`: migrate, API, one worker) on a free port, as a user would start it."""
    data = tmp_path_factory.mktemp("studio-up")
    port = free_port()
    env = {
        **os.environ,
        "STUDIO_DATA_DIR": str(data / "data"),
        "STUDIO_DATABASE_URL": "",
        "STUDIO_BROKER_URL": "",
        "STUDIO_REDIS_URL": "",
        **FAST_ENV,
        "PYTHONUNBUFFERED": "1",
    }
    log = (data / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "up", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"studio up exited: {(data / 'up.log').read_text()}")
        time.sleep(0.3)
    yield StudioUp(url, {k: v for k, v in env.items() if k.startswith("STUDIO_")})
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
