"""Text detection in the browser: upload an ICDAR 2015 project of words drawn with Pillow, export it back
as ICDAR 2015 from the dataset page, choose text detection and DBNet in the run form (its estimate shown
before Start), train with live curves and the time left, read the model's page (precision, recall and
hmean) and try a new picture (the words found drawn)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.synth import zip_folder
from tests.e2e.test_training import (
    CHART_HAS_POINTS,
    IMG_LOADED,
    JOB_URL,
    MODEL_URL,
    TRAIN_WAIT_MS,
    WORKER_WAIT_MS,
    _sign_up,
    open_section,
    run_field,
    upload_dataset,
)
from tests.worker.text_synth import write_icdar_project

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def test_text_upload_export_train_dashboard_try_it(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    page = e2e_page
    nav = page.get_by_role("navigation", name="Main")
    _sign_up(page)
    page.set_viewport_size({"width": 1400, "height": 900})

    write_icdar_project(tmp_path / "words", 12, seed=3, size=(128, 96))
    upload_dataset(page, zip_folder(tmp_path / "words", tmp_path / "words.zip"), "words", "icdar")
    expect(page.get_by_test_id("task-chip")).to_have_text(["Text detection"])
    with page.expect_download(timeout=WORKER_WAIT_MS) as download_info:
        page.get_by_test_id("export-icdar").click()
    assert download_info.value.suggested_filename.endswith(".zip")
    expect(page.get_by_test_id("export-imagenet")).to_be_disabled()  # words are not image classes
    shot("text-dataset")

    nav.get_by_role("link", name="Train").click()
    expect(page.get_by_label("Task")).to_have_value("text_detection")
    card = page.locator("[data-testid=catalog-row][data-name=dbnet_resnet18]")
    expect(card.get_by_role("radio")).to_be_checked()  # the recommended one, preselected
    task = "text_detection"
    form = page.get_by_role("form", name="Run config")
    simple = form.get_by_test_id("simple-fields")
    run_field(simple, page, task, "data.input_size").fill("128")
    run_field(simple, page, task, "data.batch_size").fill("4")
    run_field(simple, page, task, "schedule.epochs").fill("2")
    run_field(open_section(form, "data"), page, task, "data.workers").fill("0")
    run_field(form.get_by_test_id("run-fields"), page, task, "name").fill("words <e2e>")
    augment = open_section(form, "data.augment")
    rotate = augment.locator("[data-testid='item-data.augment'][data-step=rotate]")
    expect(rotate.locator("input")).to_have_count(2)  # its probability and its largest angle
    expect(form.get_by_test_id("estimate").get_by_test_id("estimate-text")).to_contain_text(
        re.compile(r"About .* per iteration"), timeout=TRAIN_WAIT_MS
    )
    shot("text-form")

    form.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(JOB_URL)
    page.wait_for_function(CHART_HAS_POINTS, arg="chart-loss", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("stat-iter-time")).to_have_text(re.compile(r"\d"))
    shot("text-run")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_WAIT_MS)
    expect(page.get_by_test_id("job-config-yaml")).to_contain_text("task: text_detection")

    page.get_by_test_id("model-link").click()
    expect(page).to_have_url(MODEL_URL)
    expect(page.get_by_test_id("summary-hmean")).to_have_text(re.compile(r"^\d+\.\d%$"))
    # Two epochs find few words: the pictures with the most missed ones, counted in words.
    expect(page.get_by_test_id("worst-row").first.get_by_test_id("worst-score")).to_have_text(
        re.compile(r"^missed \d+ of \d+ · \d+ false$")
    )
    shot("text-dashboard")

    # The words behind the figures: those it missed, drawn on their pictures with their outlines.
    page.get_by_test_id("where-wrong").get_by_test_id("explain-missed").first.click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel.get_by_test_id("explain-title")).to_contain_text("Missed text")
    expect(panel.get_by_test_id("explain-count")).to_contain_text(re.compile(r"(objects?|is here)"))
    if panel.get_by_test_id("explain-row").count():
        expect(panel.get_by_test_id("explain-boxes").first.locator("polygon")).to_have_count(1)
    shot("text-missed-words")

    try_it = page.get_by_test_id("try-it")
    image = next((tmp_path / "words").glob("img_*.png"))
    try_it.get_by_label("Image to classify").set_input_files(str(image))
    page.wait_for_function(IMG_LOADED, arg="overlay-img", timeout=WORKER_WAIT_MS)
    expect(try_it.get_by_role("heading", name="Words found")).to_be_visible()
    shot("text-try-it")
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
