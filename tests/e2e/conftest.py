"""Browser fixtures for the end-to-end tests.

Debian's ``chromium`` driven by the Python ``playwright`` package (sync API); no
browser download (``playwright install``) is needed or attempted. The
``studio_url`` fixture (a running studio with a worker) comes from
``tests/conftest.py``. Screenshots go to ``$STUDIO_E2E_ARTIFACTS`` (default
``build/e2e``), one folder per test, one numbered file per step.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright import sync_api
except ImportError:  # the tests skip; `pip install playwright` (no browser download needed)
    sync_api = None  # type: ignore[assignment]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.e2e_call_failed = report.failed  # type: ignore[attr-defined]
    return report


def _missing(reason: str) -> None:
    # `make test` (and so CI) sets STUDIO_REQUIRE_BROWSER: there a missing browser fails the run loudly.
    if os.environ.get("STUDIO_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    if sync_api is None:
        _missing("the playwright package is not installed")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def e2e_page(chromium_browser: Any, studio_url: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page on the studio, closed afterwards."""
    viewport = {"width": 1280, "height": 860}
    context = chromium_browser.new_context(base_url=studio_url.rstrip("/"), viewport=viewport)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The studio's Content-Security-Policy must not get in the UI's way: a blocked resource is an error.
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.page_errors = errors  # uncaught exceptions in the app, for tests to assert on
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shot(e2e_page: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[str], None]]:
    """``shot("step-name")`` saves a numbered full-page screenshot; a failing test gets a last one."""
    root = Path(os.environ.get("STUDIO_E2E_ARTIFACTS", "build/e2e"))
    folder = root / re.sub(r"[^\w.-]+", "_", request.node.name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    count = 0

    def take(name: str) -> None:
        nonlocal count
        count += 1
        e2e_page.screenshot(path=str(folder / f"{count:02d}-{name}.png"), full_page=True)

    yield take
    if getattr(request.node, "e2e_call_failed", False):
        with contextlib.suppress(Exception):
            take("FAILED")
