"""Replay a credential-stuffing run against a live web service and plot its /metrics.

    .venv/bin/python scripts/plot_metrics.py [--out PNG] [--customers N]

Self-contained: it creates a throw-away data directory (dev keys, a seeded shop, demo
authenticators), starts the web service on a free port, and then plays three phases while
scraping ``/metrics`` once a second:

1. normal traffic: shoppers from their own addresses, an occasional typo, then the right code;
2. the attack: one address tries a wrong step-up code on many customers' secure-form links;
3. containment: the anomaly scan raises ``credential_stuffing``, the address is blocked,
   and the attacker's further requests are refused (``cartguard_blocked_requests_total``).

Clients use distinct loopback source addresses (127.0.x.y), so the service sees real,
different client addresses. Prints a short summary, including the scrape latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRONG = "000000"
_METRIC = re.compile(r"^(cartguard_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")
SERIES = {
    "step-up failures": ("cartguard_stepup_total", 'outcome="failure"'),
    "step-up successes": ("cartguard_stepup_total", 'outcome="success"'),
    "step-up lockouts": ("cartguard_stepup_total", 'outcome="lockout"'),
    "links used": ("cartguard_secure_links_total", 'event="used"'),
    "security events": ("cartguard_security_events_total", 'rule="credential_stuffing"'),
    "blocked requests": ("cartguard_blocked_requests_total", None),
}


def _prepare_environment() -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="cartguard-plot-"))
    os.environ["CARTGUARD_DATA_DIR"] = str(data_dir)
    for name in list(os.environ):
        if name.startswith("CARTGUARD_") and name != "CARTGUARD_DATA_DIR":
            del os.environ[name]
    return data_dir


class WebService:
    """The real web service in a background thread (like the test harness does)."""

    def __init__(self) -> None:
        from sanic import Sanic

        from cartguard.webapp.app import create_app

        Sanic.test_mode = True
        self.app = create_app()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError("the web service did not start within 30 s")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            self.app.create_server(sock=self.sock, return_asyncio_server=True, access_log=False)
        )
        self.loop.run_until_complete(server.startup())
        self.loop.run_until_complete(server.after_start())
        self.ready.set()
        self.loop.run_forever()


def _client(address: str):
    import requests
    from requests.adapters import HTTPAdapter

    class FromAddress(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            kwargs["source_address"] = (address, 0)
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("http://", FromAddress())
    return session


def _try_code(web: WebService, address: str, customer_id: int, code: str) -> int:
    from cartguard.links import issue_link
    from cartguard.shop.db import session_scope

    with session_scope() as session:
        link = issue_link(
            session,
            conversation_id=f"psid-{customer_id}-{time.monotonic_ns()}",
            customer_id=customer_id,
            purpose="otp",
            channel="facebook",
        )
    http = _client(address)
    page = http.get(f"{web.url}/s/{link.token}", timeout=10)
    if page.status_code != 200:
        return page.status_code
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    form = {"code": code, "csrf_token": csrf.group(1) if csrf else ""}
    return http.post(f"{web.url}/s/{link.token}", data=form, timeout=10).status_code


class Scraper(threading.Thread):
    """Scrapes /metrics every ``interval`` seconds from loopback (allowed without a token)."""

    def __init__(self, url: str, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.latencies: list[float] = []
        self.marks: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.stop = threading.Event()

    def scrape(self) -> None:
        import requests

        began = time.perf_counter()
        text = requests.get(self.url + "/metrics", timeout=10).text
        self.latencies.append(time.perf_counter() - began)
        values: dict[str, float] = {}
        for line in text.splitlines():
            match = _METRIC.match(line)
            if match:
                name, labels, value = match.groups()
                values[f"{name}{labels or ''}"] = float(value)
        self.samples.append((time.monotonic() - self.started, values))

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic() - self.started, label))

    def run(self) -> None:
        while not self.stop.is_set():
            self.scrape()
            self.stop.wait(self.interval)


def _value(values: dict[str, float], name: str, label: str | None) -> float:
    key = f"{name}{{{label}}}" if label else name
    return values.get(key, 0.0)


def plot(scraper: Scraper, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for t, _ in scraper.samples]
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    for title, (name, label) in SERIES.items():
        ys = [_value(values, name, label) for _, values in scraper.samples]
        if any(ys):
            style = "--" if title == "links used" else "-"
            ax.step(times, ys, where="post", label=title, linewidth=2, linestyle=style)
    for at, label in scraper.marks:
        ax.axvline(at, color="grey", linestyle=":", linewidth=1)
        ax.text(at, ax.get_ylim()[1] * 0.97, f" {label}", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("counter value (scraped from /metrics)")
    ax.set_title("Cartguard web service during a replayed credential-stuffing run")
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    fig.text(0.99, 0.01, f"scripts/plot_metrics.py, {stamp}", ha="right", fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs/screenshots/metrics-credential-stuffing.png"
    )
    parser.add_argument("--customers", type=int, default=12, help="accounts the attacker tries")
    args = parser.parse_args()

    _prepare_environment()
    from cartguard.keys import generate_dev_keys
    from cartguard.monitoring import incident, signals
    from cartguard.monitoring.service import scan_once
    from cartguard.settings import get_settings
    from cartguard.shop.db import session_scope
    from cartguard.shop.models._common import utcnow
    from cartguard.shop.schema import create_schema
    from cartguard.shop.seed import seed_shop
    from cartguard.stepup import totp
    from cartguard.stepup.enrolment import enroll_demo_customers

    generate_dev_keys(get_settings().keys_file)
    create_schema()
    with session_scope() as session:
        ids = [c.id for c in seed_shop(session, customers=args.customers, orders_per_customer=1)]
    secrets: dict[int, str] = {}
    for customer_id in ids:
        with session_scope() as session:
            secrets.update(enroll_demo_customers(session, [customer_id]))

    web = WebService()
    scraper = Scraper(web.url)
    scraper.start()
    time.sleep(2)

    scraper.mark("normal traffic")
    for n, customer_id in enumerate(ids[: len(ids) // 2]):
        shopper = f"127.0.1.{10 + n}"
        if n % 3 == 0:
            _try_code(web, shopper, customer_id, WRONG)  # a typo
        _try_code(web, shopper, customer_id, totp.current_code(secrets[customer_id], utcnow()))
        time.sleep(0.4)
    time.sleep(2)

    scraper.mark("credential stuffing from 127.0.9.9")
    attacker = "127.0.9.9"
    for _round in range(2):
        for customer_id in ids:
            _try_code(web, attacker, customer_id, WRONG)
            time.sleep(0.1)
    time.sleep(1)

    raised = scan_once()
    scraper.mark(f"anomaly scan: {raised} event(s)")
    time.sleep(1)
    with session_scope() as session:
        incident.block(session, "ip", attacker, actor="script:plot_metrics", reason="replay")
    scraper.mark("block-ip")
    refused = [_try_code(web, attacker, customer_id, WRONG) for customer_id in ids[:6]]
    time.sleep(3)
    scraper.stop.set()
    scraper.join(5)
    scraper.scrape()

    plot(scraper, args.out)
    final = scraper.samples[-1][1]
    print(f"wrote {args.out}")
    print(
        f"step-up failures {_value(final, *SERIES['step-up failures']):.0f}, "
        f"lockouts {_value(final, *SERIES['step-up lockouts']):.0f}, "
        f"security events {raised}, attacker after block: HTTP {sorted(set(refused))}"
    )
    print(
        f"/metrics scrape: median {statistics.median(scraper.latencies) * 1000:.1f} ms over "
        f"{len(scraper.latencies)} scrapes; attacker pseudonym ip:{signals.pseudonym(attacker)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
