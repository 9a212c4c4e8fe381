"""`make screenshots`: the pictures in docs/screenshots/, taken from the real assistant.

The only writer of docs/screenshots/ (tests write their pictures to a temporary directory).
It starts the stack exactly as ``make run`` does (``scripts/run.sh`` on free loopback ports with
a data directory of its own, see :mod:`devtools.runstack`), opens the URL the script printed in
Debian's Chromium, logs in with the first printed demo login and records a shopper's session:

01 the shop page with the chat launcher        02 the chat's first turn (consent)
03 orders, a balance after a step-up code, an invoice
04 a card update: the code prompt comes first   05 the secure card form (outside the chat)
06 the chat confirms the saved card by its mask

A missing picture means the assistant did not answer as expected: the script stops with the
reason (and the stack's logs stay in the temporary data directory it names).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from devtools import runstack  # noqa: E402

OUT = PROJECT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: pictures of the stand-in chat server that earlier test runs left; they show no assistant
STALE = ["01-shop-page.png", "02-chat-open.png", "03-chat-sends-link.png",
         "04-secure-card-form.png", "05-card-saved.png", "06-chat-confirms.png",
         "10-full-stack-link.png", "11-full-stack-confirmed.png",
         "20-conversation-orders-balance-invoice.png"]  # fmt: skip
TEST_CARD = "4242424242424242"  # the card networks' public test number


def _bot(page: Page, pattern: str, timeout_ms: int = 90000) -> str:
    locator = page.locator(".rw-response", has_text=re.compile(pattern, re.I)).last
    locator.wait_for(state="visible", timeout=timeout_ms)
    return locator.inner_text()


def _say(page: Page, text: str) -> None:
    page.fill(".rw-new-message", text)
    page.keyboard.press("Enter")


def _shoot(page: Page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=str(path))
    print(f"    {path.relative_to(PROJECT)}")


def take(stack: runstack.RunningStack) -> None:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if not executable:
        raise SystemExit("Chromium is not installed: run `make system`")
    login = stack.logins[0]
    url = stack.url.rstrip("/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 860})
        page = context.new_page()
        page.goto(f"{url}/login")
        page.fill("#f-email", login.email)
        page.fill("#f-password", login.password)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.locator(".rw-launcher").wait_for(state="visible", timeout=30000)
        _shoot(page, "01-shop-page.png")

        page.locator(".rw-launcher").click()
        _bot(page, "assistant")
        _shoot(page, "02-chat-first-turn.png")
        _say(page, "yes")
        page.wait_for_timeout(2000)

        _say(page, "where is my order?")
        _bot(page, r"CG-\d{6}")
        _say(page, "what's my store credit?")
        _bot(page, "6-digit code")
        _say(page, stack.cli("totp-code", str(login.customer_id)).split()[-1])
        _bot(page, r"\$\d")
        _say(page, "show my latest invoice")
        _bot(page, r"INV-\d{4}-\d{5}")
        _shoot(page, "03-orders-balance-invoice.png")

        page.evaluate("() => window.sessionStorage.clear()")  # a new conversation
        page.reload()
        page.locator(".rw-launcher").click(timeout=30000)
        _bot(page, "assistant")
        _say(page, "I want to update my payment card")
        _bot(page, "code")
        _shoot(page, "04-card-update-asks-for-a-code.png")
        page.wait_for_timeout(31000)  # a fresh TOTP step: each code is accepted once
        _say(page, stack.cli("totp-code", str(login.customer_id)).split()[-1])
        link = page.locator(".rw-conversation-container a[href*='/s/']").last
        link.wait_for(state="visible", timeout=90000)
        form = context.new_page()
        form.goto(link.get_attribute("href"))
        form.fill("#f-number", " ".join(TEST_CARD[i : i + 4] for i in range(0, 16, 4)))
        form.fill("#f-expiry", "10/32")
        form.fill("#f-cvv", "123")
        form.fill("#f-name", login.name)
        _shoot(form, "05-secure-card-form.png")
        form.click("main button[type=submit]")
        form.locator("h1").wait_for(timeout=30000)
        form.close()
        _bot(page, TEST_CARD[-4:])
        _shoot(page, "06-chat-confirms-the-card.png")
        browser.close()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="cartguard-screenshots-"))
    print(f"==> starting the assistant as `make run` does (data: {data})")
    stack = runstack.start(data, customers=3)
    try:
        for name in STALE:
            (OUT / name).unlink(missing_ok=True)
        print(f"==> taking pictures of {stack.url}")
        take(stack)
    finally:
        stack.stop()
    shutil.rmtree(data, ignore_errors=True)
    print("==> done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
