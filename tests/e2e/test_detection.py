"""Detection in the browser: upload a labelme project of rectangles and discs, choose object detection
and a light Faster R-CNN in the generated form, preview the augmentations with their boxes, train with
live curves, then read the dashboard (box mAP tiles, per-class AP with object counts, the confusion matrix
with its background row, precision-recall curves, the images with missed objects drawn next to their
labels), try a new image (detections drawn; no Grad-CAM for detectors) and export TorchScript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.synth import zip_folder
from tests.e2e.test_segmentation import ALL_LOADED
from tests.e2e.test_training import (
    CHART_HAS_POINTS,
    IMG_LOADED,
    JOB_URL,
    MODEL_URL,
    TRAIN_WAIT_MS,
    WORKER_WAIT_MS,
    _new_image,
    _sign_up,
    open_section,
    run_field,
    upload_dataset,
)
from tests.worker.detection_data import make_detection_project

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def test_detect_train_dashboard_predict_export(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    nav = page.get_by_role("navigation", name="Main")
    _sign_up(page)

    root = tmp_path / "objects"
    make_detection_project(root, 40, size=128, seed=4, negatives=2)
    upload_dataset(page, zip_folder(root, tmp_path / "objects.zip"), "objects", "labelme")

    nav.get_by_role("link", name="Train").click()
    page.get_by_label("Task").select_option("object_detection")
    row = page.locator("[data-testid=catalog-row][data-name=fasterrcnn_mobilenet_v3_large_fpn]")
    expect(row).to_be_visible()
    row.get_by_role("radio").check()
    task = "object_detection"
    form = page.get_by_role("form", name="Run config")
    simple = form.get_by_test_id("simple-fields")
    run_field(simple, page, task, "data.batch_size").fill("8")
    run_field(simple, page, task, "schedule.epochs").fill("3")
    run_field(open_section(form, "data"), page, task, "data.workers").fill("0")
    run_field(form.get_by_test_id("run-fields"), page, task, "name").fill("boxes <e2e>")
    augment = open_section(form, "data.augment")
    augment.get_by_role("button", name="Preview augmentations").click()
    expect(form.get_by_test_id("preview-img").first).to_be_visible(timeout=TRAIN_WAIT_MS)
    shot("detection-form")

    form.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(JOB_URL)
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-loss", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("job-config-yaml")).to_contain_text("task: object_detection")
    shot("detection-run")

    page.get_by_test_id("model-link").click()
    expect(page).to_have_url(MODEL_URL)
    expect(page.get_by_test_id("summary-bbox-mAP")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.get_by_test_id("per-class").get_by_role("columnheader")).to_have_text(
        ["Class", "box AP", "box AP@0.5", "box AP@0.75", "box AR", "objects"]
    )
    expect(page.get_by_test_id("per-class-row").locator(".per-class__name")).to_have_text(["box", "disc"])
    expect(page.get_by_test_id("confusion-matrix").get_by_test_id("cm-row")).to_have_text(
        ["box", "disc", "background"]
    )
    expect(page.get_by_test_id("pr-curves")).to_be_visible()
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-val-metrics", timeout=10_000)
    worst = page.get_by_test_id("worst-row")
    expect(worst.first.get_by_test_id("worst-score")).to_have_text(
        re.compile(r"^missed \d+ of \d+ · \d+ false$")
    )
    worst.last.scroll_into_view_if_needed()  # the pictures load lazily, as they come into view
    # The pictures load lazily, as a person scrolls to them: scroll to the last one first.
    page.get_by_test_id("worst-row").last.scroll_into_view_if_needed()
    page.wait_for_function(ALL_LOADED, arg="worst-images", timeout=10_000)
    expect(page.get_by_test_id("cam-gallery")).to_be_visible()  # a detector's maps: Grad-CAM of a box
    shot("detection-dashboard")

    # The boxes behind a count of the matrix, each drawn on its picture and cropped.
    page.get_by_test_id("confusion-matrix").get_by_role("button").last.click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel.get_by_test_id("explain-row").first).to_be_visible()
    expect(panel.get_by_test_id("explain-verdict").first).to_have_text(
        re.compile(r"(found|detected as|false detection|missed)")
    )
    expect(panel.get_by_test_id("explain-boxes").first).to_be_visible()
    expect(panel.get_by_test_id("explain-crop").first).to_be_visible()
    shot("detection-cell-boxes")
    # A point of a precision-recall curve: the score it takes, and the boxes it keeps.
    pick = page.get_by_test_id("pr-pick")
    expect(pick.get_by_test_id("pr-point")).to_contain_text("precision")
    if pick.get_by_test_id("pr-show").count():
        pick.get_by_test_id("pr-show").click()
        expect(panel.get_by_test_id("explain-title")).to_contain_text("scoring")

    try_it = page.get_by_test_id("try-it")
    try_it.get_by_label("Image to classify").set_input_files(str(_new_image(tmp_path / "new.png")))
    page.wait_for_function(IMG_LOADED, arg="overlay-img", timeout=WORKER_WAIT_MS)
    expect(try_it.get_by_role("heading", name="Detections drawn")).to_be_visible()
    # A detector's map: Grad-CAM of its top box, or EigenCAM of the picture when it found none.
    page.wait_for_function(IMG_LOADED, arg="cam-img", timeout=WORKER_WAIT_MS)
    expect(try_it.get_by_test_id("cam-caption")).to_contain_text(re.compile(r"^(Explains its box|EigenCAM)"))
    shot("detection-try-it")

    with page.expect_download(timeout=WORKER_WAIT_MS) as download_info:
        page.get_by_role("button", name="Export TorchScript").click()
    assert download_info.value.suggested_filename.endswith(".pt")
    expect(page.get_by_test_id("export-torchscript-state")).to_contain_text("Downloaded")
    shot("detection-exported")
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
