"""A checkpoint made elsewhere, brought in through the Models page: a bad file is refused in place naming
it, a good state dict is checked by its import job (weights only), becomes a ready model and predicts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_training import MODEL_URL, PASSWORD, WORKER_WAIT_MS, _new_image

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
torch = pytest.importorskip("torch", reason="torch is not installed (the worker extra)")

CLASSES = ["cat", "<dog>", "fox"]


def _sign_up(page: Any) -> None:
    page.goto("/signup")
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(f"e2e-models-{uuid.uuid4().hex[:12]}@example.com")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/health$"))


def test_upload_a_checkpoint_then_predict_with_it(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    from worker.zoo import build_model

    page = e2e_page
    _sign_up(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    form = page.get_by_role("form", name="Upload a checkpoint")

    # A file that is no checkpoint: refused at once, the message names the file.
    junk = tmp_path / "notes.pt"
    junk.write_bytes(b"these are not weights")
    form.get_by_label("Checkpoint file").set_input_files(str(junk))
    form.get_by_label("Class names (one per line, in head order)").fill("\n".join(CLASSES))
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_test_id("model-upload-error")).to_contain_text("notes.pt")
    shot("bad-checkpoint-refused")

    # A real state dict of a catalog architecture, saved here.
    good = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    torch.save(build_model("tiny_cnn", len(CLASSES)).state_dict(), good)
    form.get_by_label("Checkpoint file").set_input_files(str(good))
    form.get_by_label("Name", exact=True).fill("uploaded <tiny>")
    form.get_by_label("Task").select_option("classification")
    form.get_by_label("Architecture").select_option("tiny_cnn")
    form.get_by_label("Input size (px)").fill("32")
    form.get_by_role("button", name="Upload").click()
    outcome = form.get_by_test_id("model-upload-outcome")
    expect(outcome).to_contain_text("succeeded", timeout=WORKER_WAIT_MS)
    row = page.get_by_test_id("model-row").filter(has_text="uploaded <tiny>")
    expect(row.get_by_test_id("model-status")).to_have_text("ready")
    shot("checkpoint-imported")

    outcome.get_by_role("link", name="open the model").click()
    expect(page).to_have_url(MODEL_URL)
    expect(page.get_by_test_id("model-title")).to_have_text("uploaded <tiny>")
    try_it = page.get_by_test_id("try-it")
    try_it.get_by_label("Image to classify").set_input_files(str(_new_image(tmp_path / "new.png")))
    expect(try_it.get_by_test_id("topk-row")).to_have_count(len(CLASSES), timeout=WORKER_WAIT_MS)
    assert sorted(try_it.get_by_test_id("topk-name").all_inner_texts()) == sorted(CLASSES)
    shot("uploaded-model-predicts")
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"


def test_a_detector_that_finds_nothing_says_so_in_words(
    e2e_page: Any, shot: Callable[[str], None], tmp_path: Path
) -> None:
    """A detector whose classifier always answers background (its bias set so): "Try it" says in words
    that nothing scored above the threshold, and the map shown is EigenCAM of the picture, said so."""
    from worker.zoo import build_model

    page = e2e_page
    _sign_up(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    torch.manual_seed(0)
    state = build_model("fasterrcnn_mobilenet_v3_large_fpn", 2).state_dict()
    bias = state["net.roi_heads.box_predictor.cls_score.bias"]
    state["net.roi_heads.box_predictor.cls_score.bias"] = torch.tensor([50.0, -50.0, -50.0], dtype=bias.dtype)
    weights = tmp_path / "blind.pt"
    torch.save(state, weights)
    form = page.get_by_role("form", name="Upload a checkpoint")
    form.get_by_label("Checkpoint file").set_input_files(str(weights))
    form.get_by_label("Class names (one per line, in head order)").fill("box\ndisc")
    form.get_by_label("Name", exact=True).fill("blind detector")
    form.get_by_label("Task").select_option("object_detection")
    form.get_by_label("Architecture").select_option("fasterrcnn_mobilenet_v3_large_fpn")
    form.get_by_role("button", name="Upload").click()
    outcome = form.get_by_test_id("model-upload-outcome")
    expect(outcome).to_contain_text("succeeded", timeout=WORKER_WAIT_MS)
    outcome.get_by_role("link", name="open the model").click()
    expect(page).to_have_url(MODEL_URL)

    try_it = page.get_by_test_id("try-it")
    try_it.get_by_label("Image to classify").set_input_files(str(_new_image(tmp_path / "new.png")))
    expect(try_it.get_by_test_id("topk-empty")).to_have_text(
        re.compile(r"^Nothing found: no object scored above the model's score threshold"),
        timeout=WORKER_WAIT_MS,
    )
    expect(try_it.get_by_test_id("cam-caption")).to_contain_text("EigenCAM", timeout=WORKER_WAIT_MS)
    shot("detector-finds-nothing")
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
