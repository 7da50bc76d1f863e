"""``studio import``, ``studio export`` and ``studio token create`` from the shell, without a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import ROOT, Stack
from tests.datasets.synth import make_labelme_project


def _studio(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env(), "STUDIO_NEW_USER_PASSWORD": "from the shell"}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_a_folder_then_export_coco(sqlite_stack: Stack, tmp_path: Path) -> None:
    assert _studio(sqlite_stack, "user", "create", "cli@example.com").returncode == 0
    make_labelme_project(
        tmp_path / "proj", n_images=4, labels_txt=["_background_", "circle", "square", "triangle"]
    )
    done = _studio(
        sqlite_stack, "import", str(tmp_path / "proj"), "--user", "cli@example.com", "--name", "cli"
    )
    assert done.returncode == 0, done.stderr
    assert "dataset 1: 4 images" in done.stdout and "['circle', 'square', 'triangle']" in done.stdout
    out = tmp_path / "coco.zip"
    exported = _studio(
        sqlite_stack, "export", "1", "--user", "cli@example.com", "--format", "coco", "--out", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert any(n.startswith("annotations/instances_") for n in zipfile.ZipFile(out).namelist())
    assert (tmp_path / "proj" / "img_0000.json").exists()  # the source folder is only read

    broken = tmp_path / "broken"
    make_labelme_project(broken, n_images=2)
    (broken / "img_0000.json").write_text("{")
    failed = _studio(sqlite_stack, "import", str(broken), "--user", "cli@example.com")
    assert failed.returncode == 1 and "img_0000.json" in failed.stderr
    nobody = _studio(sqlite_stack, "export", "1", "--user", "nobody@example.com")
    assert nobody.returncode == 1 and "no user with email" in nobody.stderr
    foreign = _studio(sqlite_stack, "export", "99", "--user", "cli@example.com")
    assert foreign.returncode == 1 and "dataset 99 not found" in foreign.stderr
    unknown = _studio(sqlite_stack, "export", "1", "--user", "cli@example.com", "--format", "yolo")
    assert unknown.returncode == 2 and "'yolo' is not one of voc, coco, imagenet, icdar" in unknown.stderr
    refused = _studio(sqlite_stack, "export", "1", "--user", "cli@example.com", "--format", "icdar")
    assert refused.returncode == 1 and "ICDAR 2015 needs words: text polygons" in refused.stderr

    shapes = tmp_path / "one bad shape"
    make_labelme_project(shapes, n_images=2)
    doc = (shapes / "img_0001.json").read_text()
    (shapes / "img_0001.json").write_text(
        doc.replace('"shapes": [', '"shapes": [{"label": "x", "points": [[1, 1]]}, ', 1)
    )
    stopped = _studio(sqlite_stack, "import", str(shapes), "--user", "cli@example.com")
    assert stopped.returncode == 1 and "img_0001.json, shape 0" in stopped.stderr
    skipped = _studio(sqlite_stack, "import", str(shapes), "--user", "cli@example.com", "--skip-bad-shapes")
    assert skipped.returncode == 0, skipped.stderr
    assert "img_0001.json, shape 0" in skipped.stderr and "the shape was skipped" in skipped.stderr


def test_token_create_prints_a_token_that_signs_api_calls(sqlite_stack: Stack, client: TestClient) -> None:
    """TOKEN=$(studio token create --user ...) then curl -H "Authorization: Bearer $TOKEN": stdout is the
    token alone; the token is listed under its name and answers as its owner."""
    assert _studio(sqlite_stack, "user", "create", "shell@example.com").returncode == 0
    made = _studio(sqlite_stack, "token", "create", "--user", "shell@example.com", "--name", "nightly")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("stu_") and "\n" not in token and "nightly" in made.stderr
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=auth).json()["email"] == "shell@example.com"
    assert [t["name"] for t in client.get("/api/tokens", headers=auth).json()] == ["nightly"]
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer stu_wrong"}).status_code == 401
    bad = _studio(sqlite_stack, "token", "create", "--user", "shell@example.com", "--name", "<b>")
    assert bad.returncode == 2 and "--name" in bad.stderr
    nobody = _studio(sqlite_stack, "token", "create", "--user", "nobody@example.com")
    assert nobody.returncode == 1 and "no user with email" in nobody.stderr
