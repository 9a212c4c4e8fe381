"""How ``python -m cartguard.rasa_main`` completes Rasa's arguments: loopback, secrets, origins.

Attacks first: Rasa's default interface (0.0.0.0) over plain HTTP, a second ``--cors`` flag that
silently replaces the first (issue 15: the printed localhost URL never connected), a wildcard
origin, a secret on the command line. The end-to-end proof (listeners and /proc/PID/cmdline of
the processes ``make run`` starts) is tests/browser/test_run_script.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartguard.keys import Keys
from cartguard.rasa_main import UnsafeServerArguments, _bind_to, server_arguments
from cartguard.settings import allowed_origins, load_settings

KEYS = Keys(values={"rasa_jwt_secret": "-starts-with-a-dash-" + "x" * 30}, vault_keys={}, dev=True)


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch):
    for name in ("CARTGUARD_HOST", "CARTGUARD_ALLOWED_ORIGINS", "CARTGUARD_PUBLIC_WEB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEB_PORT", "8080")
    return load_settings()


def _values_after(args: list[str], flag: str) -> list[str]:
    index = args.index(flag)
    values = []
    for arg in args[index + 1 :]:
        if arg.startswith("-"):
            break
        values.append(arg)
    return values


def test_rasa_listens_on_loopback_unless_told_otherwise(settings) -> None:
    args = server_arguments(["run", "--port", "5005"], settings, None)
    assert _values_after(args, "--interface") == ["127.0.0.1"]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::"])
def test_a_public_address_in_clear_text_is_refused(settings, host: str) -> None:
    with pytest.raises(UnsafeServerArguments, match="not a loopback"):
        server_arguments(["run", "-i", host], settings, None)
    with pytest.raises(UnsafeServerArguments):
        server_arguments(["run"], dataclasses.replace(settings, host=host), None)


def test_a_public_address_is_allowed_behind_a_tls_proxy_or_with_tls(settings) -> None:
    behind = dataclasses.replace(settings, host="0.0.0.0", behind_tls_proxy=True)
    assert _values_after(server_arguments(["run"], behind, None), "--interface") == ["0.0.0.0"]
    tls = ["run", "-i", "0.0.0.0", "--ssl-certificate", "c.pem", "--ssl-keyfile", "k.pem"]
    assert "--interface" not in server_arguments(tls, settings, None)


def test_every_allowed_origin_follows_one_cors_flag(settings) -> None:
    args = server_arguments(["run", "--enable-api"], settings, KEYS)
    assert args.count("--cors") == 1
    assert _values_after(args, "--cors") == ["http://localhost:8080", "http://127.0.0.1:8080"]


def test_the_jwt_secret_is_added_in_memory_as_one_argument(settings) -> None:
    args = server_arguments(["run", "--enable-api"], settings, KEYS)
    # one "--jwt-secret=VALUE" argument: a secret starting with "-" cannot be read as a flag
    assert f"--jwt-secret={KEYS.get('rasa_jwt_secret')}" in args
    assert _values_after(args, "--jwt-method") == ["HS256"]
    assert not any(a.startswith("--jwt") for a in server_arguments(["run"], settings, None))


def test_an_api_without_keys_is_refused(settings) -> None:
    with pytest.raises(UnsafeServerArguments, match="JWT secret"):
        server_arguments(["run", "--enable-api"], settings, None)


def test_rasa_interactive_binds_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from sanic import Sanic

    seen: list[str] = []
    monkeypatch.setattr(Sanic, "run", lambda self, *a, **kw: seen.append(kw.get("host", a[:1])))
    _bind_to("127.0.0.1")
    Sanic.run(object(), host="0.0.0.0", port=5005)  # what rasa interactive calls
    assert seen == ["127.0.0.1"]


# --- the one setting: CARTGUARD_ALLOWED_ORIGINS ---------------------------------------------


def test_the_default_covers_every_name_of_the_printed_url() -> None:
    assert allowed_origins(None, public_web_url="https://shop.example/", web_port=8080) == (
        "https://shop.example",
        "http://localhost:8080",
        "http://127.0.0.1:8080",
    )


@pytest.mark.parametrize(
    "raw", ["*", "https://shop.example/chat", "shop.example", "javascript:alert(1)", "ftp://x"]
)
def test_a_wildcard_path_or_non_web_origin_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="CARTGUARD_ALLOWED_ORIGINS"):
        allowed_origins(raw, public_web_url="", web_port=8080)


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True)
origins = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}" + (f":{port}" if port else ""),
    st.sampled_from(["http", "https"]),
    hosts,
    st.one_of(st.none(), st.integers(1, 65535)),
)


@given(st.lists(origins, min_size=1, max_size=6), st.sampled_from([" ", ",", ", ", "\n"]))
def test_any_list_of_origins_comes_back_once_each_in_order(values: list[str], sep: str) -> None:
    result = allowed_origins(sep.join(values), public_web_url="", web_port=8080)
    assert list(result) == list(dict.fromkeys(values))
