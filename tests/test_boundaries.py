"""The API process stays light, starts from the settings alone, and fails soft when the database is gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.settings import Settings, get_settings
from tests.conftest import ROOT


def test_backend_imports_neither_torch_nor_the_worker() -> None:
    code = (
        "import sys, backend.app, backend.cli; backend.app.create_app(); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'worker')); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "STUDIO_DATA_DIR": "/tmp/studio-import-check"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    key = s.secret()
    path = tmp_path / "secret_key"
    assert len(key) >= 48 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path).secret() == key
    assert Settings(data_dir=tmp_path, secret_key="configured").secret() == "configured"


def test_defaults_run_on_one_machine(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'studio.db'}"
    assert s.broker_url == "filesystem://" and s.redis_url == ""
    assert s.heartbeat_seconds <= 30 and s.heartbeat_timeout_seconds == 90 and s.max_attempts == 3
    redis = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0")
    assert redis.redis_url == "redis://127.0.0.1:6379/0"


def test_out_of_range_setting_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_HEARTBEAT_SECONDS", "45")
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        Settings(data_dir=tmp_path)


def test_unreachable_database_is_503_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    # A port nothing listens on: every query fails to connect.
    monkeypatch.setenv("STUDIO_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/test")
    get_settings.cache_clear()
    try:
        from backend.app import create_app

        with TestClient(create_app(), raise_server_exceptions=False) as client:
            r = client.post("/api/auth/login", json={"email": "a@example.com", "password": "password1"})
            assert r.status_code == 503
            assert r.json() == {
                "detail": "the database is unavailable, try again shortly",
                "code": "database_unavailable",
            }
            client.cookies.set("studio_session", "x")
            assert client.get("/api/jobs").status_code == 503
            health = client.get("/api/health")
            assert health.status_code == 503
            assert health.json()["database"]["ok"] is False and health.json()["status"] == "degraded"
    finally:
        get_settings.cache_clear()


@pytest.mark.usefixtures("sqlite_stack")
def test_unknown_api_path_is_json_404(client: TestClient) -> None:
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.get("/api/openapi.json").json()["info"]["title"] == "Studio"


def test_compose_file_describes_the_scaled_deployment() -> None:
    """No Docker engine runs here, so the compose file is checked for what it must say."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"api", "training", "light", "inference", "postgres", "redis"}
    for name in ("api", "training", "light", "inference"):
        env = services[name]["environment"]
        assert env["STUDIO_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["STUDIO_BROKER_URL"].startswith("redis://")
        assert "studio-data:/data" in services[name]["volumes"]
    for lane in ("training", "light", "inference"):
        assert services[lane]["command"][-2:] == ["--lane", lane]
    # The API names the training lane's machine (it sees no GPU itself): run configs' defaults follow it.
    assert services["api"]["environment"]["STUDIO_TRAINING_DEVICES"] == "0"
    devices = services["training"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "studio migrate" in " ".join(services["api"]["command"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm run build" in dockerfile and "pip install -e '.[worker]'" in dockerfile


# Where a task's own code lives in the worker: its package under worker/tasks (the registry and the
# protocol are shared), and classification's data and losses, which other tasks' loaders share.
TASK_MODULES = ("worker.data", "worker.losses")


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _is_task_module(name: str) -> bool:
    if name.startswith("worker.tasks.") and name not in ("worker.tasks.protocol",):
        return True
    return any(name == m or name.startswith(m + ".") for m in TASK_MODULES)


@pytest.mark.parametrize("folder", ["worker/engine", "worker/training"])
def test_the_loop_and_the_recipe_import_no_task(folder: str) -> None:
    """A task is a plug-in: the training loop and the one recipe reach it through the registry alone."""
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / folder).glob("*.py"))
        for name in _imports(path)
        if _is_task_module(name)
    }
    assert not offenders, sorted(offenders)


def test_every_task_has_a_runtime_and_every_runtime_a_task() -> None:
    from backend.tasks import TASKS
    from worker.tasks import RUNTIMES, get_runtime

    assert set(RUNTIMES) == set(TASKS)
    for name in TASKS:
        runtime = get_runtime(name)
        assert callable(runtime.plan) and callable(runtime.finish), name
