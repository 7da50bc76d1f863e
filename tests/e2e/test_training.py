"""Training in the browser: upload a class-folder dataset, fill the generated run form (a bad field is refused
in place), train ``tiny_cnn`` with live curves, open the model (confusion matrix), try it on a new image
(top classes, overlay, Grad-CAM) and export TorchScript.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.synth import make_image_folder, zip_folder

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
ImageDraw = pytest.importorskip("PIL.ImageDraw", reason="Pillow is not installed")

PASSWORD = "correct-horse-battery"
CLASSES = ["circle", "square", "triangle"]
IMPORT_WAIT_MS = 60_000
TRAIN_WAIT_MS = 90_000
WORKER_WAIT_MS = 60_000  # predict, overlay, Grad-CAM and export each go through the worker
DATASET_URL = re.compile(r"/datasets/(\d+)$")
JOB_URL = re.compile(r"/jobs/(\d+)$")
MODEL_URL = re.compile(r"/models/(\d+)$")

CHART_HAS_POINTS = """(testId) => {
  const fig = document.querySelector(`[data-testid="${testId}"]`);
  return !!fig && Number(fig.getAttribute('data-points')) > 0 && !!fig.querySelector('canvas');
}"""
IMG_LOADED = """(testId) => {
  const img = document.querySelector(`[data-testid="${testId}"]`);
  return !!img && img.complete && img.naturalWidth > 0;
}"""


def _sign_up(page: Any) -> None:
    email = f"e2e-train-{uuid.uuid4().hex[:12]}@example.com"
    page.goto("/signup")
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/health$"))


def upload_dataset(page: Any, archive: Path, name: str, fmt: str) -> int:
    """Upload a zip on the Datasets page as a user does and wait until it is imported; its id."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(archive))
    panel.get_by_label("Name").fill(name)
    panel.get_by_label("Format").select_option(fmt)
    panel.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(DATASET_URL, timeout=IMPORT_WAIT_MS)
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=IMPORT_WAIT_MS)
    return int(DATASET_URL.search(page.url).group(1))  # type: ignore[union-attr]


def _dataset_zip(tmp_path: Path) -> Path:
    root = tmp_path / "shapes"
    make_image_folder(root, per_class=8, splits=True, size=(32, 32))
    return zip_folder(root, tmp_path / "shapes.zip")


def _new_image(path: Path) -> Path:
    """A picture none of the training images is: a red disc on grey, 40 x 40."""
    img = Image.new("RGB", (40, 40), (128, 128, 128))
    ImageDraw.Draw(img).ellipse((8, 8, 32, 32), fill=(220, 40, 40))
    img.save(path)
    return path


def test_train_watch_inspect_predict_export(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    nav = page.get_by_role("navigation", name="Main")
    _sign_up(page)

    # 1. A small class-folder dataset, uploaded on the Datasets page.
    dataset_id = upload_dataset(page, _dataset_zip(tmp_path), "shapes <train>", "folder")
    expect(page.get_by_test_id("class-chip")).to_have_text(CLASSES)

    # 2. The run form: dataset, task, a light model from the catalog, then the generated config form.
    nav.get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="New training run")).to_be_visible()
    expect(page.get_by_label("Dataset version")).to_have_value(str(dataset_id))
    expect(page.get_by_label("Task")).to_have_value("classification")
    tiny = page.locator("[data-testid=catalog-row][data-name=tiny_cnn]")
    expect(tiny.get_by_test_id("light-chip")).to_be_visible()
    expect(tiny.get_by_test_id("catalog-params")).to_have_text(re.compile(r"measuring…|\d"))
    tiny.get_by_role("radio").check()

    form = page.get_by_role("form", name="Run config")
    data = form.get_by_role("group", name="data", exact=True)
    schedule = form.get_by_role("group", name="schedule", exact=True)
    runtime = form.get_by_role("group", name="runtime", exact=True)
    expect(data.get_by_label("dataset_id", exact=True)).to_have_value(str(dataset_id))
    expect(data.get_by_label("input_size", exact=True)).to_have_value("64")  # the light model's CPU default
    expect(schedule.get_by_label("lr", exact=True)).to_have_value("0.001")
    augment = data.get_by_role("group", name="augment")
    expect(augment.get_by_test_id("item-data.augment")).to_have_count(2)  # the studio's default pipeline
    expect(augment.get_by_test_id("item-data.augment").first.get_by_label("name", exact=True)).to_have_value(
        "random_resized_crop"
    )
    data.get_by_label("input_size", exact=True).fill("32")
    data.get_by_label("batch_size", exact=True).fill("16")
    data.get_by_label("workers", exact=True).fill("0")
    schedule.get_by_label("epochs", exact=True).fill("3")
    runtime.get_by_label("log_interval", exact=True).fill("1")
    form.get_by_label("name", exact=True).first.fill("tiny <e2e>")

    # 3. A bad field: flagged as typed, and the studio's 422 is shown next to that same field.
    schedule.get_by_label("lr", exact=True).fill("0")
    lr_error = form.get_by_test_id("error-schedule.lr")
    expect(lr_error).to_have_text("must be > 0")
    form.get_by_role("button", name="Check config").click()
    expect(lr_error).to_contain_text("greater than 0")
    expect(form.get_by_test_id("server-errors")).to_contain_text("schedule.lr")
    shot("bad-lr-refused")
    schedule.get_by_label("lr", exact=True).fill("0.003")
    expect(lr_error).to_have_count(0)
    form.get_by_role("button", name="Check config").click()
    expect(form.get_by_test_id("check-ok")).to_be_visible()
    form.get_by_role("button", name="Preview augmentations").click()
    # Drawn by the worker (after whatever it is busy with, e.g. measuring the catalog): polled to its end.
    expect(
        form.get_by_test_id("preview-img").first.or_(form.get_by_test_id("preview-unavailable"))
    ).to_be_visible(timeout=TRAIN_WAIT_MS)
    shot("run-form")

    # 4. Start: the run page, curves filling in over SSE, then success.
    form.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(JOB_URL)
    job_id = int(JOB_URL.search(page.url).group(1))  # type: ignore[union-attr]
    expect(page.get_by_test_id("job-title")).to_contain_text("tiny <e2e>")
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-loss", timeout=TRAIN_WAIT_MS)
    shot("run-training")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_WAIT_MS)
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-val", timeout=10_000)
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-lr", timeout=10_000)
    loss_points = int(page.get_by_test_id("chart-loss").get_attribute("data-points"))
    assert loss_points >= 3, loss_points
    expect(page.get_by_test_id("job-config-yaml")).to_contain_text("architecture: tiny_cnn")
    expect(page.get_by_test_id("job-result")).to_contain_text('"model_id"')
    shot("run-succeeded")

    # 5. The jobs list shows it; then its model: confusion matrix, per-class table, accuracy curve.
    nav.get_by_role("link", name="Jobs").click()
    row = page.locator(f"[data-testid=job-row][data-job-id='{job_id}']")
    expect(row.get_by_test_id("job-status")).to_have_text("succeeded")
    row.get_by_test_id("job-link").click()
    page.get_by_test_id("model-link").click()
    expect(page).to_have_url(MODEL_URL)
    expect(page.get_by_test_id("model-status")).to_have_text("ready")
    matrix = page.get_by_test_id("confusion-matrix")
    expect(matrix.get_by_test_id("cm-row")).to_have_text(CLASSES)
    expect(matrix.get_by_test_id("cm-cell")).to_have_count(len(CLASSES) ** 2)
    expect(page.get_by_test_id("per-class-row")).to_have_count(len(CLASSES))
    expect(page.get_by_test_id("model-params")).not_to_have_text("—")
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-val-metrics", timeout=10_000)
    shot("model-page")

    # 6. Try it on a new image: top classes, the prediction drawn, a Grad-CAM map.
    try_it = page.get_by_test_id("try-it")
    try_it.get_by_label("Image to classify").set_input_files(str(_new_image(tmp_path / "new.png")))
    expect(try_it.get_by_test_id("topk-row")).to_have_count(len(CLASSES), timeout=WORKER_WAIT_MS)
    names = try_it.get_by_test_id("topk-name").all_inner_texts()
    assert sorted(names) == CLASSES, names
    page.wait_for_function(IMG_LOADED, arg="overlay-img", timeout=WORKER_WAIT_MS)
    page.wait_for_function(IMG_LOADED, arg="cam-img", timeout=WORKER_WAIT_MS)
    shot("try-it")

    # 7. Export TorchScript: made by a worker job on first request, then downloaded.
    with page.expect_download(timeout=WORKER_WAIT_MS) as download_info:
        page.get_by_role("button", name="Export TorchScript").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pt"), download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    assert saved.stat().st_size > 1000
    expect(page.get_by_test_id("export-torchscript-state")).to_contain_text("Downloaded")
    shot("exported")

    # 8. The models list.
    nav.get_by_role("link", name="Models").click()
    model_row = page.get_by_test_id("model-row").first
    expect(model_row.get_by_test_id("model-status")).to_have_text("ready")
    expect(model_row.get_by_test_id("model-score")).to_have_text(re.compile(r"\d+\.\d% top-1"))
    shot("models-list")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
