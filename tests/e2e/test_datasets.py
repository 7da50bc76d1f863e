"""Datasets in the browser: upload a labelme project with live progress, read its page (classes, report,
charts, thumbnails), filter, open an image and move it, export VOC, re-split into a new version.

Also checks that a zip with an entry climbing out with ``..`` is refused in place, naming the entry.
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.synth import make_labelme_project, zip_folder

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "correct-horse-battery"
LABELS = ["__ignore__", "_background_", "circle", "square", "triangle"]
N_IMAGES = 8
IMPORT_WAIT_MS = 60_000  # a worker picks the import up, then lands it
EXPORT_WAIT_MS = 60_000  # a light-lane job converts the version, then the zip downloads
DATASET_URL = re.compile(r"/datasets/(\d+)$")
IMAGE_URL = re.compile(r"/datasets/(\d+)/images/(\d+)$")

# Records every state the progress bars go through, so a fast upload or import cannot slip by unseen.
WATCH_PROGRESS = """() => {
  window.__progress = [];
  const seen = new Set();
  const record = () => {
    for (const bar of document.querySelectorAll('[role=progressbar]')) {
      const label = bar.getAttribute('aria-label');
      const value = Number(bar.getAttribute('aria-valuenow'));
      const text = bar.getAttribute('aria-valuetext');
      const key = `${label}|${value}|${text}`;
      if (!seen.has(key)) {
        seen.add(key);
        window.__progress.push({label, value, text});
      }
    }
  };
  const options = {subtree: true, childList: true, attributes: true, characterData: true};
  new MutationObserver(record).observe(document.body, options);
}"""

ANY_THUMB_LOADED = """() => [...document.querySelectorAll('[data-testid=thumb-img]')]
  .some((img) => img.complete && img.naturalWidth > 0)"""
IMAGE_LOADED = """() => {
  const img = document.querySelector('[data-testid=rendered-image]');
  return img && img.complete && img.naturalWidth > 0;
}"""
EN_DASH = "\u2013"


def _sign_up(page: Any, prefix: str) -> None:
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    page.goto("/signup")
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/health$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()


def _project_zip(tmp_path: Path) -> Path:
    root = tmp_path / "shapes"
    make_labelme_project(root, n_images=N_IMAGES, labels_txt=LABELS)
    # Not a labelme file: the import leaves it out with a warning that names it.
    (root / "notes.json").write_text(json.dumps({"comment": "<b>not labelme</b>"}))
    return zip_folder(root, tmp_path / "shapes.zip")


def _throttle_uploads(page: Any, bytes_per_second: int) -> None:
    """Slow the browser's uploads so the upload progress bar can be seen moving."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def test_upload_browse_filter_export_resplit(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    _sign_up(page, "e2e-ds")
    expect(page.get_by_test_id("no-datasets")).to_be_visible()
    shot("datasets-empty")

    # 1. Choose the zip with the file picker, name it, upload: upload progress, then the import's.
    archive = _project_zip(tmp_path)
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(archive))
    expect(panel.get_by_test_id("chosen-file")).to_have_text("shapes.zip")
    panel.get_by_label("Name").fill("shapes <e2e>")
    panel.get_by_label("Format").select_option("labelme")
    shot("upload-chosen")

    page.evaluate(WATCH_PROGRESS)
    _throttle_uploads(page, max(archive.stat().st_size // 3, 16 * 1024))  # about three seconds
    panel.get_by_role("button", name="Upload and import").click()
    upload_bar = panel.get_by_role("progressbar", name="Upload progress")
    expect(upload_bar).to_be_visible()
    expect(panel.get_by_test_id("upload-progress")).to_contain_text("Upload")
    shot("uploading")

    expect(page).to_have_url(DATASET_URL, timeout=IMPORT_WAIT_MS)
    dataset_id = int(DATASET_URL.search(page.url).group(1))  # type: ignore[union-attr]
    _throttle_uploads(page, -1)
    progress = page.evaluate("window.__progress")
    uploads = [p["value"] for p in progress if p["label"] == "Upload progress"]
    imports = [p for p in progress if p["label"] == "Import progress"]
    assert uploads and max(uploads) == 100, progress
    assert any(0 < v < 100 for v in uploads), f"no intermediate upload progress seen: {progress}"
    assert imports, f"the import's progress was never shown: {progress}"
    assert any("Imported" in (p["text"] or "") for p in imports), progress

    # 2. The dataset page: header, classes in labels.txt order, tasks, stats, report, bars.
    expect(page.get_by_test_id("dataset-title")).to_have_text("shapes <e2e>")
    expect(page.get_by_test_id("dataset-version")).to_have_text("v1")
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready")
    expect(page.get_by_test_id("class-chip")).to_have_text(["circle", "square", "triangle"])
    expect(page.get_by_test_id("task-chip").filter(has_text="Object detection")).to_be_visible()
    expect(page.get_by_test_id("stat-images")).to_have_text(str(N_IMAGES))
    expect(page.get_by_test_id("bars-images").get_by_test_id("class-bar-name")).to_have_text(
        ["circle", "square", "triangle"]
    )
    expect(page.get_by_test_id("bars-instances").get_by_test_id("class-bar")).to_have_count(3)

    report = page.get_by_test_id("import-report")
    expect(report.get_by_test_id("report-summary")).to_contain_text("1 warning")
    group = report.locator("[data-testid=report-group][data-code=not_labelme]")
    expect(group.get_by_test_id("finding-file")).to_have_text("notes.json")
    report.get_by_label("Level").select_option("error")
    expect(report.get_by_test_id("report-group")).to_have_count(0)
    report.get_by_label("Level").select_option("all")
    expect(report.get_by_test_id("report-group")).to_have_count(1)

    # 3. Thumbnails with labels drawn on: all images on one page, and they load.
    grid = page.get_by_test_id("image-grid")
    expect(grid.get_by_test_id("thumb")).to_have_count(N_IMAGES)
    expect(grid.get_by_test_id("grid-count")).to_have_text(f"1{EN_DASH}{N_IMAGES} of {N_IMAGES}")
    expect(grid.get_by_test_id("thumb-img").first).to_have_attribute(
        "src", re.compile(r"/thumbnail\?.*overlay=1")
    )
    expect(grid.get_by_test_id("thumb-img").first).to_have_attribute("loading", "lazy")
    page.wait_for_function(ANY_THUMB_LOADED)
    shot("dataset-page")

    # 4. Filter by split: only validation images, as many as the split table says.
    val_images = int(page.get_by_test_id("split-val-images").inner_text())
    assert val_images >= 1
    grid.get_by_label("Split").select_option("val")
    expect(page).to_have_url(re.compile(r"[?&]split=val"))
    expect(grid.get_by_test_id("thumb")).to_have_count(val_images)
    expect(grid.get_by_test_id("thumb-split")).to_have_text(["val"] * val_images)
    grid.get_by_label("Class").select_option("circle")
    expect(page).to_have_url(re.compile(r"[?&]class=circle"))
    expect(
        grid.get_by_test_id("grid-count").or_(grid.get_by_text("No image matches these filters."))
    ).to_be_visible()
    shot("filtered-val-circle")
    grid.get_by_role("button", name="Clear filters").click()
    expect(grid.get_by_test_id("thumb")).to_have_count(N_IMAGES)

    # 5. Open one image: rendered with labels, its shapes, its (empty) findings.
    grid.get_by_test_id("thumb").first.get_by_role("link").click()
    expect(page).to_have_url(IMAGE_URL)
    image_id = int(IMAGE_URL.search(page.url).group(2))  # type: ignore[union-attr]
    expect(page.get_by_test_id("image-title")).to_have_text(re.compile(r"^img_\d{4}\.jpg$"))
    rendered = page.get_by_test_id("rendered-image")
    expect(rendered).to_have_attribute("src", re.compile(r"/render\?overlay=1"))
    page.wait_for_function(IMAGE_LOADED)
    expect(page.get_by_test_id("shape-row").first).to_be_visible()
    expect(page.get_by_test_id("shape-class").first).to_have_text(re.compile(r"circle|square|triangle"))
    shot("image-view")

    # Next and back again, by button and by arrow key, in the grid's order.
    expect(page.get_by_test_id("image-position")).to_have_text(f"1 of {N_IMAGES}")
    first_title = page.get_by_test_id("image-title").inner_text()
    page.get_by_role("button", name="Next →").click()
    expect(page.get_by_test_id("image-position")).to_have_text(f"2 of {N_IMAGES}")
    expect(page.get_by_test_id("image-title")).not_to_have_text(first_title)
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_test_id("image-position")).to_have_text(f"1 of {N_IMAGES}")
    expect(page).to_have_url(re.compile(rf"/images/{image_id}$"))

    # 6. Move this image to the test split: a new version, the same image in it.
    current = page.get_by_test_id("image-split").inner_text()
    target = "test" if current != "test" else "train"
    page.get_by_label("Move to", exact=True).select_option(target)
    page.get_by_role("button", name="Move (new version)").click()
    expect(page).to_have_url(re.compile(rf"/datasets/(?!{dataset_id}/)\d+/images/{image_id}$"))
    moved_id = int(IMAGE_URL.search(page.url).group(1))  # type: ignore[union-attr]
    assert moved_id != dataset_id
    expect(page.get_by_test_id("image-split")).to_have_text(target)
    expect(page.get_by_test_id("moved-note")).to_be_visible()
    page.wait_for_function(IMAGE_LOADED)
    shot("image-moved")

    # 7. Back to the new version's page; it names its parent. Export VOC.
    page.get_by_test_id("back-to-dataset").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{moved_id}$"))
    expect(page.get_by_test_id("dataset-version")).to_have_text("v2")
    expect(page.get_by_test_id("parent-link")).to_have_attribute("href", f"/datasets/{dataset_id}")
    with page.expect_download(timeout=EXPORT_WAIT_MS) as download_info:  # a light-lane job writes the zip
        page.get_by_test_id("export-voc").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-v2-voc.zip"), download.suggested_filename
    saved = tmp_path / "voc.zip"
    download.save_as(str(saved))
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
    assert any(n.endswith("class_names.txt") for n in names), names[:20]
    expect(page.get_by_role("button", name="ImageNet")).to_be_disabled()  # shapes, not image-level classes

    # 8. Re-split 50/25/25 with seed 7: a third version, made from the second.
    form = page.get_by_role("form", name="Re-split")
    form.get_by_label("Train %").fill("50")
    form.get_by_label("Validation %").fill("25")
    form.get_by_label("Test %").fill("30")
    form.get_by_label("Seed").fill("7")
    form.get_by_role("button", name="Re-split").click()
    expect(form.get_by_test_id("resplit-error")).to_contain_text("105%")
    form.get_by_label("Test %").fill("25")
    shot("resplit-form")
    form.get_by_role("button", name="Re-split").click()
    expect(page.get_by_test_id("dataset-version")).to_have_text("v3")
    resplit_id = int(DATASET_URL.search(page.url).group(1))  # type: ignore[union-attr]
    assert resplit_id not in (dataset_id, moved_id)
    expect(page.get_by_test_id("parent-link")).to_have_attribute("href", f"/datasets/{moved_id}")
    counts = [int(page.get_by_test_id(f"split-{s}-images").inner_text()) for s in ("train", "val", "test")]
    assert sum(counts) == N_IMAGES and counts[1] >= 1 and counts[2] >= 1, counts
    page.wait_for_function(ANY_THUMB_LOADED)
    shot("resplit-new-version")

    # 9. The list shows the three versions, newest first.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    rows = page.get_by_test_id("dataset-row")
    expect(rows).to_have_count(3)
    expect(rows.get_by_test_id("dataset-status")).to_have_text(["ready"] * 3)
    expect(rows.first.get_by_test_id("dataset-name")).to_have_text("shapes <e2e>")
    expect(rows.first.get_by_test_id("dataset-images")).to_have_text(str(N_IMAGES))
    expect(rows.first.get_by_test_id("dataset-classes")).to_have_text("3")
    shot("datasets-list")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"


def test_upload_refuses_path_traversal_in_place(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    _sign_up(page, "e2e-evil")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("project/img.json", json.dumps({"shapes": []}))
        zf.writestr("../evil.json", "{}")

    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(evil))
    panel.get_by_role("button", name="Upload and import").click()

    error = panel.get_by_test_id("upload-error")
    expect(error).to_be_visible()
    expect(error.get_by_test_id("upload-error-code")).to_have_text("archive_path_traversal")
    expect(error.get_by_test_id("upload-error-entry")).to_have_text("../evil.json")
    expect(error.get_by_test_id("upload-error-message")).to_contain_text("evil.zip")
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.get_by_test_id("dataset-row")).to_have_count(0)
    shot("path-traversal-refused")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"


def test_one_bad_shape_fails_the_import_then_it_lands_without_that_shape(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    """By default a polygon of two points fails the whole project; the list says why, and the dataset's
    page imports the kept upload again without the bad shape, which the new report lists."""
    page = e2e_page
    _sign_up(page, "e2e-skip")
    root = tmp_path / "one bad shape"
    make_labelme_project(root, n_images=4, labels_txt=LABELS)
    doc = json.loads((root / "img_0002.json").read_text())
    doc["shapes"].insert(0, {**doc["shapes"][0], "shape_type": "polygon", "points": [[1, 1], [9, 9]]})
    (root / "img_0002.json").write_text(json.dumps(doc))
    archive = zip_folder(root, tmp_path / "bad.zip")

    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(archive))
    expect(panel.get_by_role("checkbox", name="Skip bad shapes")).not_to_be_checked()
    panel.get_by_role("button", name="Upload and import").click()
    error = panel.get_by_test_id("import-error")
    expect(error).to_contain_text("img_0002.json, shape 0: polygon has 2 points", timeout=IMPORT_WAIT_MS)
    shot("import-failed-on-one-shape")

    page.reload()
    row = page.get_by_test_id("dataset-row").first
    expect(row.get_by_test_id("dataset-status")).to_have_text("failed")
    expect(row.get_by_test_id("dataset-failure")).to_contain_text("polygon has 2 points")
    shot("failed-import-in-the-list")
    row.get_by_role("link", name=re.compile("import it again")).click()
    banner = page.get_by_test_id("dataset-failed")
    expect(banner).to_contain_text("The import failed: img_0002.json, shape 0")
    shot("failed-import-page")

    banner.get_by_role("button", name="Import again without the bad shape").click()
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=IMPORT_WAIT_MS)
    summary = page.get_by_test_id("import-report").get_by_test_id("report-summary")
    expect(summary).to_contain_text("1 bad shape left out")
    expect(page.get_by_test_id("stat-images")).to_have_text("4")
    page.wait_for_function(ANY_THUMB_LOADED)
    shot("imported-without-the-bad-shape")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"


def test_a_phone_wide_window_keeps_every_page_link_on_screen(
    e2e_page: Any, shot: Callable[[str], None]
) -> None:
    """At 390 px the pages go on a row of their own under the brand and the session: nothing runs off."""
    page = e2e_page
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_up(page, "e2e-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    nav = page.get_by_role("navigation", name="Main")
    brand = page.get_by_role("link", name="Studio home").bounding_box()
    links = nav.get_by_role("link")
    expect(links).to_have_count(6)
    for i in range(6):
        box = links.nth(i).bounding_box()
        assert box is not None and brand is not None and box["y"] > brand["y"] + brand["height"] / 2, box
    assert page.get_by_role("button", name="Sign out").is_visible()
    shot("narrow-datasets")
    page.set_viewport_size({"width": 1400, "height": 900})


PAYLOAD = '<img src=x onerror="window.__xss=1">'


def test_markup_in_names_and_labels_is_shown_as_text_and_never_runs(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    """A class label holding an ``<img onerror>`` is refused at import, the error showing it as the
    characters it is; a dataset name holding one shows as text on the datasets list, the dataset page, an
    image page, the run form and the jobs list. The script never runs (the page would set
    ``window.__xss``, and the studio's CSP would log a violation, which fails every browser test)."""
    page = e2e_page
    _sign_up(page, "e2e-xss")

    def clean(where: str) -> None:
        assert page.evaluate("window.__xss") is None, f"markup ran on {where}"
        assert page.locator("img[src=x]").count() == 0, where

    labelled = tmp_path / "markup label"
    make_labelme_project(labelled, n_images=2)
    doc = json.loads((labelled / "img_0000.json").read_text())
    doc["shapes"][0]["label"] = PAYLOAD
    (labelled / "img_0000.json").write_text(json.dumps(doc))
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(zip_folder(labelled, tmp_path / "label.zip")))
    panel.get_by_role("button", name="Upload and import").click()
    error = panel.get_by_test_id("import-error")
    expect(error).to_contain_text(
        f"label '{PAYLOAD}' has characters that are not allowed", timeout=IMPORT_WAIT_MS
    )
    clean("the import error")

    named = tmp_path / "markup name"
    make_labelme_project(named, n_images=4)
    page.reload()
    panel = page.get_by_test_id("upload-panel")
    panel.get_by_label("Zip file").set_input_files(str(zip_folder(named, tmp_path / "name.zip")))
    panel.get_by_label("Name").fill(f"name {PAYLOAD}")
    panel.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+$"), timeout=IMPORT_WAIT_MS)
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=IMPORT_WAIT_MS)
    expect(page.get_by_test_id("dataset-title")).to_have_text(f"name {PAYLOAD}")
    clean("the dataset page")
    shot("markup-dataset-page")
    page.get_by_test_id("thumb").first.get_by_role("link").click()
    expect(page.get_by_test_id("image-page")).to_be_visible()
    clean("an image page")
    nav = page.get_by_role("navigation", name="Main")
    for link in ("Datasets", "Train", "Jobs"):
        nav.get_by_role("link", name=link).click()
        page.wait_for_load_state("networkidle")
        clean(f"the {link} page")
    nav.get_by_role("link", name="Datasets").click()
    expect(page.get_by_test_id("dataset-row").filter(has_text=f"name {PAYLOAD}")).to_have_count(1)
    nav.get_by_role("link", name="Train").click()
    expect(page.get_by_label("Dataset version").locator("option").filter(has_text=PAYLOAD)).to_have_count(1)
    clean("the run form")
    shot("markup-run-form")
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
