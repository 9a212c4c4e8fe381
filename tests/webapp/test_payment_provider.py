"""The payment provider client and its local stand-in, played as a careless or hostile peer would.

The stand-in (``devtools.payment_provider``) holds card numbers, so it must run only with dev
keys, only on loopback, answer only the installation's API key, and keep numbers encrypted. The
client must turn every way the provider can fail into one of its two errors, never quoting what
the shopper typed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webharness import free_port, wait_for

from cartguard.clients.payment_provider import (
    CardRefused,
    CardToken,
    PaymentProviderClient,
    PaymentProviderUnavailable,
)
from devtools.payment_provider import (
    DECLINED_CARD,
    CardError,
    RunningProvider,
    check_card,
    serve_in_thread,
)

PROJECT = Path(__file__).resolve().parents[2]
fake = Faker()


def _card(number: str | None = None) -> dict:
    return {
        "number": number or fake.credit_card_number(card_type="visa16"),
        "exp_month": 7,
        "exp_year": 2040,
        "cvc": "321",
        "name": fake.name(),
        "idempotency_key": secrets.token_urlsafe(16),
    }


@pytest.fixture()
def client(payment_provider: RunningProvider) -> PaymentProviderClient:
    from cartguard.keys import load_keys

    return PaymentProviderClient(
        base_url=payment_provider.url, api_key=load_keys().get("payment_provider_key")
    )


# --- the client against the stand-in ---------------------------------------------------------


def test_a_card_becomes_a_token_and_the_token_can_be_forgotten(
    client: PaymentProviderClient, payment_provider: RunningProvider
) -> None:
    card = _card()
    token = client.tokenize_card(**card)
    assert isinstance(token, CardToken) and token.last4 == card["number"][-4:]
    assert (token.brand, token.expiry) == ("visa", "07/2040")
    assert card["number"] not in json.dumps(token.__dict__)
    assert payment_provider.store.reveal_number(token.id) == card["number"]
    assert client.delete_token(token.id) is True
    assert payment_provider.store.reveal_number(token.id) is None
    assert client.delete_token(token.id) is False  # already gone


def test_a_retried_request_gets_the_first_token_not_a_second_card(
    client: PaymentProviderClient,
) -> None:
    card = _card()
    first = client.tokenize_card(**card)
    assert client.tokenize_card(**card) == first
    # the same key for another card is a client bug: refused, and nothing is mixed up
    other = {**_card(), "idempotency_key": card["idempotency_key"]}
    with pytest.raises(PaymentProviderUnavailable, match="HTTP 400"):
        client.tokenize_card(**other)


def test_a_refused_card_says_what_to_fix_without_quoting_it(client: PaymentProviderClient) -> None:
    with pytest.raises(CardRefused) as refused:
        client.tokenize_card(**_card(DECLINED_CARD))
    assert refused.value.code == "card_declined" and "declined" in refused.value.message
    assert DECLINED_CARD not in str(refused.value)


def test_a_wrong_key_is_an_operator_error_that_names_the_setting(
    payment_provider: RunningProvider,
) -> None:
    wrong = PaymentProviderClient(base_url=payment_provider.url, api_key="guessed-" + "x" * 20)
    card = _card()
    with pytest.raises(PaymentProviderUnavailable) as failed:
        wrong.tokenize_card(**card)
    message = str(failed.value)
    assert "CARTGUARD_PAYMENT_PROVIDER_KEY" in message and "401" in message
    assert card["number"] not in message and "guessed-" not in message
    assert "guessed-" not in repr(wrong)  # the key never shows in a log line or traceback


def test_the_stand_in_refuses_floods_and_garbage_without_falling_over(
    payment_provider: RunningProvider, client: PaymentProviderClient
) -> None:
    headers = {"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"}
    url = payment_provider.url + "/v1/tokens"
    flood = requests.post(url, data="4" * (20 * 1024), headers=headers, timeout=10)
    garbage = requests.post(url, data=b"\xff{not json", headers=headers, timeout=10)
    wrong_shape = requests.post(url, json={"card": ["4242"]}, headers=headers, timeout=10)
    assert [flood.status_code, garbage.status_code, wrong_shape.status_code] == [400, 400, 400]
    assert client.tokenize_card(**_card()).id  # still serving


# --- every way an upstream can misbehave -----------------------------------------------------


class _Scripted:
    """An HTTP peer that answers every request with one scripted status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(scripted.status)
                self.send_header("Content-Length", str(len(scripted.body)))
                self.end_headers()
                self.wfile.write(scripted.body)

            do_POST = do_DELETE = _reply

        self.status, self.body = status, body
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def scripted() -> Iterator:
    peers: list[_Scripted] = []

    def make(status: int, body: bytes) -> PaymentProviderClient:
        peers.append(_Scripted(status, body))
        return PaymentProviderClient(base_url=peers[-1].url, api_key="k", read_timeout=5)

    yield make
    for peer in peers:
        peer.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>gateway</html>"),
        (200, b"[]"),
        (200, b'{"id": "x"}'),
        (200, b'{"id": "card_aaaaaaaaaaaa", "last4": "12345", "exp_month": 1, "exp_year": 2030}'),
        (200, b'{"id": "../../etc", "last4": "LAST4", "exp_month": 1, "exp_year": 2030}'),
        (200, b'{"id": "card_aaaaaaaaaaaa", "last4": "LAST4", "exp_month": 13, "exp_year": 2030}'),
        (502, b"Bad Gateway"),
        (500, b'{"error": {"type": "api_error"}}'),
        (402, b"not json"),
    ],
)
def test_a_broken_upstream_is_unavailable_never_a_crash(scripted, status: int, body: bytes) -> None:
    card = _card()
    client = scripted(status, body.replace(b"LAST4", card["number"][-4:].encode()))
    with pytest.raises(PaymentProviderUnavailable) as failed:
        client.tokenize_card(**card)
    assert card["number"] not in str(failed.value)


def test_an_answer_for_another_card_is_refused(scripted) -> None:
    """A provider (or a man in the middle) answering with other last four digits."""
    card = _card()
    other = "0000" if not card["number"].endswith("0000") else "1111"
    body = {"id": "card_" + "a" * 20, "last4": other, "exp_month": 7, "exp_year": 2040}
    client = scripted(200, json.dumps(body).encode())
    with pytest.raises(PaymentProviderUnavailable, match="another card"):
        client.tokenize_card(**card)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def _mostly(valid: object, *broken: st.SearchStrategy) -> st.SearchStrategy:
    """The valid value two times in three, so that one broken field at a time gets tried."""
    return st.one_of(st.just(valid), st.just(valid), *broken)


_answer = st.fixed_dictionaries(
    {
        "id": _mostly("card_" + "b" * 20, st.text(max_size=70), _json),
        "brand": _mostly("visa", st.sampled_from(["VISA", "evil<script>", ""]), _json),
        "last4": _mostly("4242", st.text(max_size=6), _json),
        "exp_month": _mostly(7, st.integers(-5, 20), st.text(max_size=3), _json),
        "exp_year": _mostly(2040, st.integers(1990, 2200), st.text(max_size=5), _json),
    }
)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(answer=_answer)
def test_any_answer_parses_to_a_clean_token_or_unavailable(answer: dict) -> None:
    try:
        token = PaymentProviderClient._parse_token(answer)
    except PaymentProviderUnavailable:
        return
    assert 8 <= len(token.id) <= 64 and token.id.replace("_", "").replace("-", "").isalnum()
    assert len(token.last4) == 4 and token.last4.isdigit()
    assert 1 <= token.exp_month <= 12 and 2000 <= token.exp_year <= 2100
    assert token.brand in {
        "visa",
        "mastercard",
        "amex",
        "discover",
        "diners",
        "jcb",
        "unionpay",
    } | {"card"}


# --- the stand-in's own validation (a provider's, not the shop's) ---------------------------


def _luhn_complete(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


@settings(deadline=None, max_examples=100)
@given(
    body=st.text(alphabet="0123456789", min_size=11, max_size=18).filter(lambda s: s[0] != "0"),
    separator=st.sampled_from(["", " ", "-", "  "]),
    position=st.integers(min_value=0, max_value=18),
    change=st.integers(min_value=1, max_value=9),
)
def test_valid_numbers_pass_and_any_one_digit_typo_is_refused(
    body: str, separator: str, position: int, change: int
) -> None:
    number = _luhn_complete(body)
    card = {"number": separator.join(number), "exp_month": 1, "exp_year": 2035, "cvc": "1234"}
    assert check_card(card)["number"] == number
    position %= len(number)
    typo = number[:position] + str((int(number[position]) + change) % 10) + number[position + 1 :]
    with pytest.raises(CardError) as refused:
        check_card({**card, "number": typo})
    assert refused.value.code == "incorrect_number"


# --- the stand-in as a process ---------------------------------------------------------------


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    return {**env, "CARTGUARD_DATA_DIR": str(data), **extra}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_stand_in_runs_as_its_own_process_on_loopback_only(tmp_path: Path) -> None:
    from cartguard.keys import generate_dev_keys

    generate_dev_keys(tmp_path / "keys.json")
    key = json.loads((tmp_path / "keys.json").read_text())["payment_provider_key"]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.payment_provider"],
        cwd=PROJECT,
        env=_env(tmp_path, PAYMENT_PROVIDER_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except requests.RequestException:
                return proc.poll() is not None  # stop waiting if it died

        assert wait_for(healthy, timeout=60) and proc.poll() is None
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        client = PaymentProviderClient(base_url=f"http://127.0.0.1:{port}", api_key=key)
        card = _card()
        assert client.tokenize_card(**card).last4 == card["number"][-4:]
        store = tmp_path / "payment-provider"
        assert oct(store.stat().st_mode & 0o777) == "0o700"
        assert all(card["number"].encode() not in p.read_bytes() for p in store.iterdir())
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert f"payment provider stand-in on http://127.0.0.1:{port}" in output
    assert card["number"] not in output  # its log has request lines, never bodies


def test_the_stand_in_refuses_to_start_with_production_keys(tmp_path: Path) -> None:
    from cartguard.keys import generate_dev_keys

    generate_dev_keys(tmp_path / "keys.json")
    result = subprocess.run(
        [sys.executable, "-m", "devtools.payment_provider"],
        cwd=PROJECT,
        env=_env(
            tmp_path,
            PAYMENT_PROVIDER_PORT=str(free_port()),
            CARTGUARD_PAYMENT_PROVIDER_KEY="a-real-providers-key-" + secrets.token_hex(8),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "runs only with generated dev keys" in result.stdout
    assert not (tmp_path / "payment-provider").exists()  # nothing was created


def test_a_thread_stand_in_can_start_and_stop_twice(tmp_path: Path) -> None:
    for _ in range(2):
        provider = serve_in_thread(tmp_path / "pp", "key-" + "z" * 20)
        assert requests.get(provider.url + "/healthz", timeout=5).json() == {"status": "ok"}
        provider.stop()
