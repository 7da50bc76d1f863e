"""The README's shell walkthrough (upload, export, train, predict, export the model), run as written
against a running studio (``studio up``): only its address and the path of ``studio`` are put in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, StudioUp
from tests.datasets.synth import make_labelme_project, zip_folder

MARK = "<!-- checked by tests/test_readme.py -->"
ADDRESS = "STUDIO=http://127.0.0.1:8000\n"


def walkthrough() -> str:
    """The ``sh`` block right after the mark."""
    after = (ROOT / "README.md").read_text().split(MARK, 1)[1].lstrip()
    assert after.startswith("```sh\n"), "the mark must be right above the walkthrough's ```sh block"
    return after.removeprefix("```sh\n").split("\n```", 1)[0]


def test_the_walkthrough_is_found_and_names_the_default_address() -> None:
    script = walkthrough()
    assert ADDRESS in script and "studio token create" in script and "wait_job" in script


@pytest.mark.timeout(600)
def test_readme_walkthrough_runs_as_written(studio_up: StudioUp, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.fail("the README's walkthrough uses jq: install it (apt-get install jq)")
    script = walkthrough().replace(ADDRESS, f"STUDIO={studio_up.url}\n")
    script = script.replace(".venv/bin/studio", str(Path(sys.executable).parent / "studio"))
    make_labelme_project(
        tmp_path / "proj",
        n_images=12,
        labels_txt=["__ignore__", "_background_", "circle", "square", "triangle"],
    )
    zip_folder(tmp_path / "proj", tmp_path / "project.zip")
    Image.new("RGB", (96, 72), (120, 160, 200)).save(tmp_path / "picture.jpg")
    env = {**os.environ, **studio_up.env, "STUDIO_NEW_USER_PASSWORD": "a readme password"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert '"semantic_segmentation"' in done.stdout and '"mIoU"' in done.stdout, said
    voc = tmp_path / "shapes-voc.zip"
    assert zipfile.is_zipfile(voc) and "class_names.txt" in zipfile.ZipFile(voc).namelist()
    onnx = (tmp_path / "model.onnx").read_bytes()
    assert len(onnx) > 10_000 and not onnx.lstrip().startswith(b"{"), onnx[:200]
