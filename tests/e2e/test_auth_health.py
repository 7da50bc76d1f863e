"""Sign up, see the health page with a live worker on each lane, sign out, sign in again.

Also checks that API errors (email taken, wrong password) show in place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

WORKER_WAIT_MS = 30_000  # workers report every few seconds; the page refreshes every 5 s
PASSWORD = "correct-horse-battery"
SIGNIN_URL = re.compile(r"/signin(\?.*)?$")
DOING = re.compile(r"^(idle|running job #\d+ \(.+\))$")  # what a worker does, in words


def test_sign_up_health_sign_out_sign_in(e2e_page: Any, shot: Callable[[str], None]) -> None:
    page = e2e_page
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    header = page.get_by_role("banner")

    # 1. Signed out: the home page redirects to sign-in.
    page.goto("/")
    expect(page).to_have_url(SIGNIN_URL)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot("redirected-to-sign-in")

    # 2. Sign up a new user.
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    shot("sign-up-filled")
    form.get_by_role("button", name="Sign up").click()

    # 3. Health: database and broker ok; each lane says what it runs and has a live worker (`studio up`
    #    starts one per lane).
    expect(page).to_have_url(re.compile(r"/health$"))
    expect(header.get_by_test_id("user-email")).to_have_text(email)
    expect(page.get_by_test_id("health-database-status")).to_have_text("ok")
    expect(page.get_by_test_id("health-broker-status")).to_have_text("ok")
    for lane in ("training", "light", "inference"):
        card = page.get_by_test_id(f"lane-{lane}")
        expect(card.get_by_test_id(f"lane-{lane}-runs")).not_to_be_empty()
        expect(card.get_by_test_id(f"lane-{lane}-counts")).to_contain_text("waiting")
        live_badge = page.get_by_test_id("worker-state").filter(has_text=re.compile(r"^live$"))
        live = card.get_by_test_id("worker-row").filter(has=live_badge)
        expect(live.first).to_be_visible(timeout=WORKER_WAIT_MS)
        expect(live.first.get_by_test_id("worker-name")).not_to_be_empty()
        expect(live.first.get_by_test_id("worker-doing")).to_have_text(DOING)
    expect(page.get_by_test_id("health-status")).to_have_text(re.compile(r"^(ok|degraded)$"))
    shot("health-with-live-lanes")

    # 4. Sign out.
    header.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(SIGNIN_URL)
    expect(header.get_by_test_id("user-email")).to_have_count(0)
    shot("signed-out")

    # 5. Signing up again with the same email: the API's 409 shows next to the email field.
    page.get_by_role("link", name="Create an account").click()
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(form.get_by_test_id("error-email")).to_contain_text("already")
    expect(form.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/signup$"))
    shot("sign-up-email-taken")

    # 6. A wrong password shows the API's error in place and does not sign in.
    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(SIGNIN_URL)
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD + "-wrong")
    form.get_by_role("button", name="Sign in").click()
    expect(form.get_by_role("alert")).to_contain_text("wrong email or password")
    expect(page).to_have_url(SIGNIN_URL)
    expect(header.get_by_test_id("user-email")).to_have_count(0)
    shot("sign-in-wrong-password")

    # 7. Sign in again: back on health with the email in the header.
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/health$"))
    expect(header.get_by_test_id("user-email")).to_have_text(email)
    expect(page.get_by_test_id("health-database-status")).to_have_text("ok")
    shot("signed-in-again")

    # 8. The session survives a reload, and / now leads to health.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/health$"))
    expect(header.get_by_test_id("user-email")).to_have_text(email)
    shot("home-when-signed-in")

    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
