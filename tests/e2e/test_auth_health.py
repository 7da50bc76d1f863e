"""Browser end-to-end: sign-up, health page with a live worker, sign-out, sign-in.

Drives Debian's ``chromium`` with the Python ``playwright`` package (sync API); no
browser download is needed. ``studio_url`` (the base URL of a running studio
with at least one worker) is a fixture provided by ``tests/conftest.py``.
Screenshots, one per step, go to ``$STUDIO_E2E_ARTIFACTS`` (default ``build/e2e``).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
WORKER_WAIT_MS = 30_000
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("STUDIO_E2E_ARTIFACTS", "build/e2e")) / "auth_health"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Steps:
    """Numbered full-page screenshots, so a failure shows how far the flow got."""

    def __init__(self, page: sync_api.Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.n = 0

    def shot(self, name: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.folder / f"{self.n:02d}-{name}.png"), full_page=True)


def test_sign_up_health_sign_out_sign_in(studio_url: str, browser: sync_api.Browser, artifacts: Path) -> None:
    base = studio_url.rstrip("/")
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    steps = Steps(page, artifacts)
    header = page.get_by_role("banner")

    try:
        # 1. Signed out: the home page redirects to sign-in.
        page.goto(base + "/")
        expect(page).to_have_url(re.compile(r"/signin(\?.*)?$"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        steps.shot("redirected-to-sign-in")

        # 2. Sign up a new user.
        page.get_by_role("link", name="Create an account").click()
        expect(page).to_have_url(re.compile(r"/signup$"))
        form = page.get_by_role("form", name="Sign up")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password", exact=True).fill(PASSWORD)
        form.get_by_label("Confirm password").fill(PASSWORD)
        steps.shot("sign-up-filled")
        form.get_by_role("button", name="Sign up").click()

        # 3. Health page: database and broker ok, a live cpu worker (the page refreshes every 5 s).
        expect(page).to_have_url(re.compile(r"/health$"))
        expect(header.get_by_test_id("user-email")).to_have_text(email)
        expect(page.get_by_test_id("health-database-status")).to_have_text("ok")
        expect(page.get_by_test_id("health-broker-status")).to_have_text("ok")
        cpu_workers = page.get_by_test_id("queue-cpu").get_by_test_id("worker-row")
        expect(cpu_workers.first).to_be_visible(timeout=WORKER_WAIT_MS)
        expect(cpu_workers.first.get_by_test_id("worker-name")).not_to_be_empty()
        expect(page.get_by_test_id("health-status")).to_have_text(re.compile(r"^(ok|degraded)$"))
        steps.shot("health-with-cpu-worker")

        # 4. Sign out.
        header.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/signin(\?.*)?$"))
        expect(header.get_by_test_id("user-email")).to_have_count(0)
        steps.shot("signed-out")

        # 5. Signing up again with the same email: the error shows next to the email field.
        page.get_by_role("link", name="Create an account").click()
        form = page.get_by_role("form", name="Sign up")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password", exact=True).fill(PASSWORD)
        form.get_by_label("Confirm password").fill(PASSWORD)
        form.get_by_role("button", name="Sign up").click()
        expect(form.get_by_test_id("error-email")).to_contain_text("already")
        expect(form.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
        expect(page).to_have_url(re.compile(r"/signup$"))
        steps.shot("sign-up-email-taken")

        # 6. A wrong password shows the API's error in place.
        page.get_by_role("link", name="Sign in", exact=True).last.click()
        expect(page).to_have_url(re.compile(r"/signin(\?.*)?$"))
        form = page.get_by_role("form", name="Sign in")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(PASSWORD + "-wrong")
        form.get_by_role("button", name="Sign in").click()
        expect(form.get_by_role("alert")).to_contain_text("wrong email or password")
        expect(page).to_have_url(re.compile(r"/signin(\?.*)?$"))
        expect(header.get_by_test_id("user-email")).to_have_count(0)
        steps.shot("sign-in-wrong-password")

        # 7. Sign in again: back on health with the email in the header.
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/health$"))
        expect(header.get_by_test_id("user-email")).to_have_text(email)
        expect(page.get_by_test_id("health-database-status")).to_have_text("ok")
        steps.shot("signed-in-again")

        # 8. The session survives a reload, and / now leads to health.
        page.goto(base + "/")
        expect(page).to_have_url(re.compile(r"/health$"))
        expect(header.get_by_test_id("user-email")).to_have_text(email)
        steps.shot("home-when-signed-in")

        assert page_errors == [], f"uncaught errors in the page: {page_errors}"
    except Exception:
        try:
            steps.shot("FAILED")
        except Exception:  # noqa: S110 - the original failure matters more
            pass
        raise
    finally:
        context.close()
