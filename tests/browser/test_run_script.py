"""`make run` as a newcomer meets it: scripts/run.sh itself, its printed URL, in Chromium.

The stack is started exactly the way ``make run`` starts it (``scripts/run.sh``, after
``cartguard init-keys`` and ``cartguard seed``), on free ports given through RASA_PORT,
ACTION_PORT, WEB_PORT, PAYMENT_PROVIDER_PORT and SMTP_PORT, with its own CARTGUARD_DATA_DIR
(:mod:`devtools.runstack`). Then:

* the URL the script prints (``http://localhost:PORT/``) and the same page on 127.0.0.1 both
  work: log in with a printed demo login, open the widget, get an answer, no console error
  (issue 15: Rasa kept only the last ``--cors`` flag, so the printed URL never connected);
* no process the script started listens on a non-loopback address (``/proc/net/tcp*``);
* no secret is on any of their command lines (``/proc/PID/cmdline``), yet Rasa's HTTP API
  does require the installation's JWT secret, which reached it through the environment;
* the console is quiet (no library warning) and ends with the URL and readable demo logins;
* Ctrl-C stops every process it started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from devtools import runstack
from devtools.runstack import RunningStack, alive, cmdline

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_script(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    model = PROJECT / "models" / "cartguard.tar.gz"
    assert model.exists(), "no trained model: run `make train` first"
    try:
        stack = runstack.start(tmp_path_factory.mktemp("run-script-var"), customers=3)
    except runstack.StackDidNotStart as exc:
        pytest.fail(str(exc))
    yield stack
    stack.stop()


def test_the_console_is_quiet_and_ends_with_the_url_and_demo_logins(run_script) -> None:
    text = run_script.text
    assert not re.search(r"warn|deprecat|traceback", text, re.I), text
    url = run_script.url
    assert url == f"http://localhost:{run_script.env['WEB_PORT']}/"
    assert text.index("Open:") > text.rindex("ready after")  # after every step line
    logins = run_script.logins
    assert [login.customer_id for login in logins] == [1, 2, 3], text
    for login in logins:  # a demo customer's e-mail is their own name's
        first, last = login.name.lower().split()[:2]
        expected = re.sub(r"[^a-z0-9.]", "", f"{first}.{last}")
        assert login.email.startswith(expected), login


@pytest.mark.parametrize("host", ["printed", "127.0.0.1"])
def test_the_printed_url_and_the_other_loopback_name_both_chat(chromium, run_script, host) -> None:
    url = run_script.url.rstrip("/")
    if host != "printed":
        url = url.replace("localhost", host)
    email, password = run_script.logins[0].email, run_script.logins[0].password
    context = chromium.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{url}/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.locator(".rw-launcher").click(timeout=30000)
    greeting = page.locator(".rw-response").first
    greeting.wait_for(state="visible", timeout=120000)  # the socket connected: Rasa answered
    before = page.locator(".rw-response").count()
    page.fill(".rw-new-message", "where is my order?")
    page.keyboard.press("Enter")
    page.locator(".rw-response").nth(before).wait_for(state="visible", timeout=60000)
    page.wait_for_timeout(500)
    context.close()
    assert problems == [], problems


def _listening_inodes() -> dict[str, str]:
    """socket inode -> local address of every listening TCP socket (IPv4 and IPv6)."""
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A":  # TCP_LISTEN
                listening[inode] = local.split(":")[0]
    return listening


def _is_loopback_hex(address: str) -> bool:
    if len(address) == 8:  # IPv4, little-endian: 127.x.x.x ends in 7F
        return address.upper().endswith("7F")
    return address.upper() in {
        "00000000000000000000000001000000",  # ::1
    } or (address.upper().startswith("0000000000000000FFFF0000") and address.upper().endswith("7F"))


def test_no_process_listens_on_a_public_address(run_script) -> None:
    listening = _listening_inodes()
    found: dict[int, list[str]] = {}
    for pid in run_script.servers():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            inode = target.removeprefix("socket:[").removesuffix("]")
            if target.startswith("socket:[") and inode in listening:
                found.setdefault(pid, []).append(listening[inode])
    assert len(found) >= 5, found  # provider, mail catcher, actions, web service, Rasa
    public = {pid: addrs for pid, addrs in found.items() if not all(map(_is_loopback_hex, addrs))}
    assert public == {}, {pid: cmdline(pid) for pid in public}


def test_no_secret_is_on_any_command_line_yet_rasa_requires_it(run_script) -> None:
    keys = json.loads((run_script.data_dir / "keys.json").read_text())
    secrets = [v for k, v in keys.items() if isinstance(v, str) and len(v) >= 16]
    secrets += list(keys["vault_keys"].values())
    secrets += json.loads((run_script.data_dir / "demo-logins.json").read_text()).values()
    servers = run_script.servers()
    assert len(servers) >= 5  # provider, mail catcher, actions, web service, Rasa
    for pid in servers:
        command = cmdline(pid)
        assert command, pid
        for secret in secrets:
            assert secret.encode() not in command, (pid, command[:120])
    # the JWT secret did reach Rasa (through the environment): its API refuses anything else
    rasa = f"http://127.0.0.1:{run_script.env['RASA_PORT']}/status"
    assert requests.get(rasa, timeout=10).status_code == 401
    now = int(time.time())
    claims = {"user": {"username": "test", "role": "admin"}, "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, "not-the-secret-" * 3, algorithm="HS256")
    genuine = jwt.encode(claims, keys["rasa_jwt_secret"], algorithm="HS256")
    assert (
        requests.get(rasa, headers={"Authorization": f"Bearer {forged}"}, timeout=10).status_code
        == 401
    )
    assert requests.get(rasa, headers={"Authorization": f"Bearer {genuine}"}, timeout=10).ok


def test_ctrl_c_stops_every_process_it_started(run_script) -> None:
    servers = run_script.servers()
    assert len(servers) >= 5
    os.killpg(run_script.process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    assert run_script.process.wait(60) != 0
    deadline = time.monotonic() + 30
    while any(map(alive, servers)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [pid for pid in servers if alive(pid)] == []
    assert "stopping" in run_script.text
