"""Nothing in the page reaches outside: the shop page, the chat widget and a secure form load
everything from our own origin (and the chat from Rasa's), with zero console errors.

Every request the browser makes is checked: one to a host other than 127.0.0.1/localhost fails
the test, and is aborted so that the test itself never talks to the outside world.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from webharness import issue

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class Watcher:
    """Collects outside requests, console errors and page errors of one browser context."""

    def __init__(self, context) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        context.route("**/*", self._route)
        context.on("page", self.watch)

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or (parts.hostname or "") in LOOPBACK:
            route.continue_()
            return
        self.outside.append(url)
        route.abort()

    def watch(self, page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on(
            "websocket",
            lambda ws: (
                None
                if (urlsplit(ws.url).hostname or "") in LOOPBACK
                else self.outside.append(ws.url)
            ),
        )

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests to outside hosts: {sorted(set(self.outside))}"
        assert self.errors == [], f"{len(self.errors)} console errors: {sorted(set(self.errors))}"


def _open_widget(page) -> None:
    page.locator(".rw-launcher").click(timeout=20000)
    page.locator(".rw-response").first.wait_for(state="visible", timeout=20000)


def test_shop_page_widget_and_secure_form_make_no_outside_request(chromium, fake_stack) -> None:
    context = chromium.new_context()
    watcher = Watcher(context)
    page = context.new_page()

    page.goto(fake_stack.web_url + "/")  # as a guest
    _open_widget(page)

    email, password = fake_stack.logins[1]
    page.goto(fake_stack.web_url + "/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(fake_stack.web_url + "/")
    _open_widget(page)
    page.fill(".rw-new-message", "hello")
    page.keyboard.press("Enter")
    page.locator(".rw-response").nth(1).wait_for(state="visible", timeout=20000)

    token, _ = issue("card", 1)
    form = context.new_page()
    form.goto(f"{fake_stack.web_url}/s/{token}")
    assert form.title().startswith("Add a payment card")
    page.wait_for_timeout(1000)  # late stylesheet or font loads would show up here

    assert any("/static/vendor/webchat.js" in url for url in watcher.requests)
    assert any("/socket.io/" in url for url in watcher.requests)  # the chat did connect
    watcher.assert_clean()
    context.close()


def test_the_served_widget_bundle_names_no_outside_stylesheet(fake_stack) -> None:
    import requests

    bundle = requests.get(fake_stack.web_url + "/static/vendor/webchat.js", timeout=10)
    assert bundle.status_code == 200 and len(bundle.text) > 100_000
    assert not re.search(r"fonts\.googleapis\.com|fonts\.gstatic\.com", bundle.text)
    assert not re.search(r"@import\s+url\(\s*[\"']?(https?:)?//", bundle.text)
