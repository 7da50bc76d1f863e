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


SIMPLE_PAGE_MAX_PX = 1800  # the run form's simple state, at 1400 x 900


def _humanize(name: str) -> str:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:]


def field_label(page: Any, task: str, path: str) -> str:
    """The label the run form gives ``path``: its title in the task's config schema (the form is generated
    from it, so a title the backend changes needs no change here), else its name in words."""
    schema = page.request.get(f"/api/schema/train-config?task={task}").json()

    def resolve(s: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in s:
            target = schema["$defs"][s["$ref"].rsplit("/", 1)[-1]]
            s = {**target, **{k: v for k, v in s.items() if k != "$ref"}}
        return s

    node: dict[str, Any] = schema
    raw: dict[str, Any] = schema
    for part in path.split("."):
        node = resolve(node)
        options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            node = resolve(options[0])
        raw = node["properties"][part]
        node = raw
    return str(raw.get("title") or _humanize(path.rsplit(".", 1)[-1]))


def run_field(scope: Any, page: Any, task: str, path: str) -> Any:
    """A field of the run form, found as a person finds it: by its label in words."""
    return scope.get_by_label(field_label(page, task, path), exact=True)


def open_section(form: Any, path: str) -> Any:
    """A folded section of the run form (``schedule``, ``data.augment``...), unfolded."""
    section = form.get_by_test_id(f"section-{path}")
    if section.get_attribute("open") is None:
        section.locator("summary").click()
    expect(section).to_have_attribute("open", "")
    return section


def fold_section(form: Any, path: str) -> Any:
    section = form.get_by_test_id(f"section-{path}")
    if section.get_attribute("open") is not None:
        section.locator("summary").click()
    expect(section).not_to_have_attribute("open", "")
    return section


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

    # 2. The run form, simple first: dataset, task, a model card (the recommended one preselected), the few
    # fields that matter, presets, the estimate and Start; everything else folded away by section.
    page.set_viewport_size({"width": 1400, "height": 900})
    nav.get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="New training run")).to_be_visible()
    expect(page.get_by_label("Dataset version")).to_have_value(str(dataset_id))
    expect(page.get_by_label("Task")).to_have_value("classification")
    expect(page.locator("[data-testid=catalog-row] input[name=architecture]:checked")).to_have_count(1)
    tiny = page.locator("[data-testid=catalog-row][data-name=tiny_cnn]")
    expect(tiny.get_by_test_id("light-chip")).to_be_visible()
    expect(tiny.get_by_test_id("catalog-params")).to_have_text(re.compile(r"counting…|\d"))
    tiny.get_by_role("radio").check()

    form = page.get_by_role("form", name="Run config")
    simple = form.get_by_test_id("simple-fields")
    task = "classification"
    # The light model's CPU default, from the server (the page invents no defaults).
    expect(run_field(simple, page, task, "data.input_size")).to_have_value("64")
    expect(run_field(simple, page, task, "data.batch_size")).to_be_visible()
    expect(run_field(simple, page, task, "schedule.epochs")).to_be_visible()
    estimate = form.get_by_test_id("estimate")
    expect(estimate).to_contain_text(re.compile(r"Estimat|Measuring|About|No estimate"))
    for section in ("data", "data.augment", "schedule", "runtime"):
        expect(form.get_by_test_id(f"section-{section}")).not_to_have_attribute("open", "")
    folded = form.get_by_test_id("section-runtime")
    expect(run_field(folded, page, task, "runtime.log_interval")).to_be_hidden()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= SIMPLE_PAGE_MAX_PX, f"the simple run form is {height} px tall at 1400 x 900"
    shot("run-form-simple")

    # A preset sets what it says it sets (the studio's own presets for this model and dataset).
    presets = page.request.get(
        f"/api/configs/presets?task={task}&dataset_id={dataset_id}&architecture=tiny_cnn"
    ).json()["presets"]
    quick = next(p for p in presets if p["name"] == "quick")
    form.get_by_test_id("preset-quick").click()
    for dotted in ("schedule.epochs", "data.input_size"):
        expect(run_field(simple, page, task, dotted)).to_have_value(str(quick["changes"][dotted]))
    # The estimate, measured on the worker, is there before Start.
    expect(estimate.get_by_test_id("estimate-text")).to_contain_text(
        re.compile(r"About .* per iteration"), timeout=TRAIN_WAIT_MS
    )

    run_field(simple, page, task, "data.input_size").fill("32")
    run_field(simple, page, task, "data.batch_size").fill("16")
    run_field(simple, page, task, "schedule.epochs").fill("3")
    run_field(form.get_by_test_id("run-fields"), page, task, "name").fill("tiny <e2e>")
    data = open_section(form, "data")
    run_field(data, page, task, "data.workers").fill("0")
    runtime = open_section(form, "runtime")
    run_field(runtime, page, task, "runtime.log_interval").fill("1")
    # Changed from this model's defaults: the log interval, and what the quick-look preset set there.
    by_preset = sum(1 for k, v in quick["changes"].items() if k.startswith("runtime.") and v != 1)
    expect(runtime.get_by_test_id("section-changed")).to_have_text(f"{1 + by_preset} changed")
    schedule = open_section(form, "schedule")
    expect(run_field(schedule, page, task, "schedule.lr")).to_have_value("0.001")

    # The augmentation pipeline: one row per step, each with only its own parameters.
    augment = open_section(form, "data.augment")
    steps = augment.get_by_test_id("item-data.augment")
    expect(steps).to_have_count(2)  # the studio's default pipeline
    expect(steps.first).to_have_attribute("data-step", "random_resized_crop")
    flip = augment.locator("[data-testid='item-data.augment'][data-step=horizontal_flip]")
    expect(flip.locator("input, select")).to_have_count(1)  # a flip has its probability and nothing else
    expect(flip.locator("label")).to_have_count(1)
    expect(flip.locator("input")).to_have_value("0.5")

    # 3. A bad field: flagged as typed, and the studio's 422 is shown next to that same field, its section
    # unfolded by itself.
    lr = run_field(schedule, page, task, "schedule.lr")
    lr.fill("0")
    lr_error = form.get_by_test_id("error-schedule.lr")
    expect(lr_error).to_have_text("must be > 0")
    fold_section(form, "schedule")
    form.get_by_role("button", name="Check config").click()
    expect(lr_error).to_contain_text("greater than 0")
    expect(form.get_by_test_id("section-schedule")).to_have_attribute("open", "")
    expect(form.get_by_test_id("section-schedule").get_by_test_id("section-errors")).to_have_text("1 error")
    expect(form.get_by_test_id("server-errors")).to_contain_text("schedule.lr")
    shot("bad-lr-refused")
    lr.fill("0.003")
    expect(lr_error).to_have_count(0)
    form.get_by_role("button", name="Check config").click()
    expect(form.get_by_test_id("check-ok")).to_be_visible()
    augment.get_by_role("button", name="Preview augmentations").click()
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
    # Beside the curves: time per iteration and the time left (or taken, once it is over).
    expect(page.get_by_test_id("stat-iter-time")).to_have_text(re.compile(r"\d"))
    expect(page.get_by_test_id("stat-eta")).to_be_visible()
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
    # The user's own work (the upload's import, the run); the studio's (catalog counts, the preview, the
    # estimates) behind a filter.
    jobs = page.get_by_test_id("job-row")
    expect(jobs).to_have_count(2)
    page.get_by_test_id("jobs-background").check()
    expect(jobs).not_to_have_count(2)
    expect(page.get_by_test_id("jobs-page")).to_contain_text("time estimate")
    shot("jobs-list")
    page.get_by_test_id("jobs-background").uncheck()
    expect(jobs).to_have_count(2)
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

    # The images behind a figure: a count in the matrix opens them, each named as it was uploaded and
    # explained by Grad-CAM of its true class.
    cell = matrix.get_by_role("button").first
    count = int(cell.inner_text())
    said = re.match(r"true (.+), predicted (.+?): ", cell.get_attribute("aria-label") or "")
    assert said, cell.get_attribute("aria-label")
    cell.click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel.get_by_test_id("explain-row")).to_have_count(min(count, 12))
    for verdict in panel.get_by_test_id("explain-verdict").all_inner_texts():
        assert verdict.startswith(f"true {said[1]} · predicted {said[2]}"), verdict
    expect(panel.get_by_test_id("explain-name").first).to_have_text(re.compile(r"\.(png|jpg)$"))
    panel.get_by_test_id("explain-cam-true").first.scroll_into_view_if_needed()
    page.wait_for_function(IMG_LOADED, arg="explain-cam-true", timeout=WORKER_WAIT_MS)
    shot("model-cell-images")

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
