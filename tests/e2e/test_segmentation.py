"""Segmentation in the browser: upload a labelme project of polygons, choose the segmentation task and a
light UNet in the generated form, preview the joint augmentations, train with live curves, then read the
model's dashboard (mIoU tiles, per-class IoU and Dice, curves over the run, the worst validation images
with their true and predicted masks), fill a Grad-CAM gallery from a split, try a new image (mask overlay
and CAM), export ONNX, then train a second run and compare the two (curves and config differences).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.synth import make_labelme_project, zip_folder
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

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

OUTPUTS = ["_background_", "circle", "square", "triangle"]
ALL_LOADED = """(testId) => {
  const imgs = [...document.querySelectorAll(`[data-testid="${testId}"] img`)];
  return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""


def test_segment_train_dashboard_gallery_predict_export(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    nav = page.get_by_role("navigation", name="Main")
    _sign_up(page)

    # 1. A labelme project of polygons, uploaded and imported.
    root = tmp_path / "polygons"
    make_labelme_project(root, n_images=40, width=64, height=64, image_format="PNG", seed=5)
    upload_dataset(page, zip_folder(root, tmp_path / "polygons.zip"), "polygons", "labelme")

    # 2. The segmentation task: its own form, generated from its schema; a light UNet from the catalog.
    nav.get_by_role("link", name="Train").click()
    page.get_by_label("Task").select_option("semantic_segmentation")
    unet = page.locator("[data-testid=catalog-row][data-name=unet_light]")
    expect(unet).to_be_visible()
    expect(page.locator("[data-testid=catalog-row][data-name=tiny_cnn]")).to_have_count(0)
    unet.get_by_role("radio").check()
    task = "semantic_segmentation"
    form = page.get_by_role("form", name="Run config")
    simple = form.get_by_test_id("simple-fields")
    expect(form.get_by_test_id("section-inference")).to_be_visible()  # a segmentation section, folded
    expect(run_field(simple, page, task, "data.input_size")).to_have_value("64")
    run_field(simple, page, task, "data.batch_size").fill("8")
    run_field(simple, page, task, "schedule.epochs").fill("6")
    run_field(open_section(form, "data"), page, task, "data.workers").fill("0")
    run_field(open_section(form, "schedule"), page, task, "schedule.lr").fill("0.003")
    run_field(form.get_by_test_id("run-fields"), page, task, "name").fill("unet <e2e>")
    augment = open_section(form, "data.augment")
    expect(augment.get_by_test_id("item-data.augment").first).to_be_visible()
    augment.get_by_role("button", name="Preview augmentations").click()
    expect(form.get_by_test_id("preview-img").first).to_be_visible(timeout=TRAIN_WAIT_MS)
    shot("segmentation-form")

    # 3. Train, watching the curves fill in.
    form.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(JOB_URL)
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-loss", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("job-config-yaml")).to_contain_text("task: semantic_segmentation")
    first_job = int(JOB_URL.search(page.url).group(1))  # type: ignore[union-attr]
    shot("segmentation-run")

    # 4. The dashboard.
    page.get_by_test_id("model-link").click()
    expect(page).to_have_url(MODEL_URL)
    expect(page.get_by_test_id("summary-mIoU")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.get_by_test_id("summary-mDice")).to_have_text(re.compile(r"^\d+\.\d%$"))
    rows = page.get_by_test_id("per-class-row")
    expect(rows).to_have_count(len(OUTPUTS))
    expect(rows.locator(".per-class__name")).to_have_text(OUTPUTS)
    expect(page.get_by_test_id("per-class").get_by_role("columnheader")).to_have_text(
        ["Class", "IoU", "Dice", "accuracy", "pixels", "Images"]
    )
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-val-metrics", timeout=10_000)
    worst = page.get_by_test_id("worst-row")
    expect(worst.first).to_be_visible()
    expect(worst.first.get_by_test_id("worst-score")).to_have_text(re.compile(r"^IoU \d\.\d{3}$"))
    expect(worst.first.get_by_role("link")).to_have_text(re.compile(r"^img_\d+\.\w+$"))  # the user's name
    # The pictures load lazily, as a person scrolls to them: scroll to the last one first.
    page.get_by_test_id("worst-row").last.scroll_into_view_if_needed()
    page.wait_for_function(ALL_LOADED, arg="worst-images", timeout=10_000)
    shot("segmentation-dashboard")

    # The images behind a class: its pictures where its IoU is lowest, the wrong pixels painted on each.
    rows.nth(1).get_by_test_id("class-lowest-iou").click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel.get_by_test_id("explain-title")).to_have_text(f"Images of {OUTPUTS[1]}, lowest IoU first")
    expect(panel.get_by_test_id("explain-verdict").first).to_contain_text(re.compile(r"IoU \d\.\d{3}"))
    expect(panel.get_by_test_id("explain-name").first).to_have_text(re.compile(r"^img_\d+\.\w+$"))
    panel.get_by_test_id("explain-errors").first.scroll_into_view_if_needed()
    page.wait_for_function(IMG_LOADED, arg="explain-errors", timeout=WORKER_WAIT_MS)
    shot("segmentation-class-images")

    # 5. A Grad-CAM gallery of the test split, filled in by a cam job.
    gallery = page.get_by_test_id("cam-gallery")
    gallery.get_by_label("Split", exact=True).select_option("test")
    gallery.get_by_label("Images", exact=True).fill("3")
    gallery.get_by_role("button", name="Explain images").click()
    expect(gallery.get_by_test_id("cam-gallery-item")).to_have_count(3, timeout=WORKER_WAIT_MS)
    gallery.get_by_test_id("cam-gallery-item").last.scroll_into_view_if_needed()
    page.wait_for_function(ALL_LOADED, arg="cam-gallery-images", timeout=10_000)
    expect(gallery.get_by_test_id("cam-gallery-item").first).to_contain_text(
        "predicted", timeout=WORKER_WAIT_MS
    )
    # Each overlay names the picture as it was uploaded, not the studio's own file.
    expect(gallery.get_by_test_id("cam-gallery-name").first).to_have_text(re.compile(r"^img_\d+\.\w+$"))
    shot("cam-gallery")

    # 6. Try it on a new picture: the mask drawn over it and a CAM.
    try_it = page.get_by_test_id("try-it")
    try_it.get_by_label("Image to classify").set_input_files(str(_new_image(tmp_path / "new.png")))
    page.wait_for_function(IMG_LOADED, arg="overlay-img", timeout=WORKER_WAIT_MS)
    page.wait_for_function(IMG_LOADED, arg="cam-img", timeout=WORKER_WAIT_MS)
    shot("segmentation-try-it")

    # 7. Export ONNX.
    with page.expect_download(timeout=WORKER_WAIT_MS) as download_info:
        page.get_by_role("button", name="Export ONNX").click()
    assert download_info.value.suggested_filename.endswith(".onnx")
    expect(page.get_by_test_id("export-onnx-state")).to_contain_text("Downloaded")
    shot("segmentation-exported")

    # 8. A second run with another learning rate, compared with the first: curves and config differences.
    nav.get_by_role("link", name="Train").click()
    page.get_by_label("Task").select_option("semantic_segmentation")
    page.locator("[data-testid=catalog-row][data-name=unet_light]").get_by_role("radio").check()
    form = page.get_by_role("form", name="Run config")
    run_field(open_section(form, "data"), page, task, "data.workers").fill("0")
    run_field(form.get_by_test_id("simple-fields"), page, task, "schedule.epochs").fill("2")
    run_field(open_section(form, "schedule"), page, task, "schedule.lr").fill("0.01")
    form.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(JOB_URL)
    second_job = int(JOB_URL.search(page.url).group(1))  # type: ignore[union-attr]
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_WAIT_MS)
    nav.get_by_role("link", name="Jobs").click()
    page.get_by_label(f"Select job {first_job}").check()
    page.get_by_label(f"Select job {second_job}").check()
    page.get_by_test_id("compare-button").click()
    expect(page.get_by_test_id("compare-page")).to_be_visible()
    page.wait_for_function(CHART_HAS_POINTS, arg="compare-val/mIoU", timeout=10_000)
    page.wait_for_function(CHART_HAS_POINTS, arg="compare-train/loss", timeout=10_000)
    diff = page.get_by_test_id("diff-row")
    expect(diff.filter(has_text="schedule.lr")).to_contain_text("0.003")
    expect(diff.filter(has_text="schedule.lr")).to_contain_text("0.01")
    expect(diff.filter(has_text="schedule.epochs")).to_have_count(1)
    # What the second run's model fixed and broke, image by image (mean IoU before and after).
    changes = page.get_by_test_id("model-changes")
    expect(changes.get_by_test_id("changes-fixed")).to_have_text(re.compile(r"^Fixed \(\d+\)$"))
    expect(
        changes.get_by_test_id("change-row").first.or_(changes.get_by_test_id("changes-none"))
    ).to_be_visible()
    if changes.get_by_test_id("change-row").count():
        expect(changes.get_by_test_id("change-text").first).to_contain_text("mIoU")
    shot("compare-runs")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
