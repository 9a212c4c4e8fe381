"""Secure forms in the load and fault runs: links issued like the action server does, submitted
like a shopper's browser does.

:func:`issue_address_links` asks for delivery-address links bound to running conversations
(one subprocess in the stack's environment for a whole batch: it needs the stack's keys and
shop database), :func:`submit` opens a link's page and posts the form with its CSRF token.
The web service then tells the conversation through Rasa's HTTP API (``trigger_intent``),
which behind the balancer lands on any replica.

    python -m bench.forms issue < [[customer_id, conversation_id], ...]   (JSON on stdin)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class IssuedLink:
    conversation_id: str
    customer_id: int
    token: str
    order_id: str
    email: str  # the customer's shop login: a link opens only for its customer, signed in
    password: str = ""


def issue_address_links(stack: Any, wanted: Sequence[tuple[int, str]]) -> list[IssuedLink]:
    """One delivery-address link per (customer id, conversation id), for an open order."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.forms", "issue"],
        input=json.dumps([list(pair) for pair in wanted]),
        env=stack.env,
        cwd=_repo(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"issuing links failed: {result.stderr.strip()[-1000:]}")
    logins = json.loads((stack.data_dir / "demo-logins.json").read_text())  # seeded demo shop
    return [
        IssuedLink(**row, password=logins[row["email"]])
        for row in json.loads(result.stdout.strip().splitlines()[-1])
    ]


def _repo() -> str:
    from cartguard.settings import PROJECT_ROOT

    return str(PROJECT_ROOT)


def _csrf(http: requests.Session, url: str, timeout: float) -> str:
    page = http.get(url, timeout=timeout)
    match = _CSRF.search(page.text)
    if page.status_code != 200 or match is None:
        raise RuntimeError(f"{url} did not open (HTTP {page.status_code})")
    return match.group(1)


def submit(web_url: str, link: IssuedLink, timeout: float = 30.0) -> requests.Response:
    """Sign in, open the form like a browser, post a new address with the page's CSRF token."""
    from faker import Faker

    fake = Faker("en_US")
    http = requests.Session()
    signed_in = http.post(
        f"{web_url}/login",
        data={
            "csrf_token": _csrf(http, f"{web_url}/login", timeout),
            "email": link.email,
            "password": link.password,
        },
        allow_redirects=False,
        timeout=timeout,
    )
    if signed_in.status_code != 303:
        raise RuntimeError(f"signing in to the web shop failed (HTTP {signed_in.status_code})")
    page = http.get(f"{web_url}/s/{link.token}", timeout=timeout)
    match = _CSRF.search(page.text)
    if page.status_code != 200 or match is None:
        raise RuntimeError(f"the form page did not open (HTTP {page.status_code})")
    return http.post(
        f"{web_url}/s/{link.token}",
        data={
            "csrf_token": match.group(1),
            "ship_name": fake.name(),
            "ship_street": fake.street_address(),
            "ship_city": fake.city(),
            "ship_postcode": fake.postcode(),
            "ship_country": "US",
        },
        allow_redirects=False,
        timeout=timeout,
    )


def _issue_main() -> int:
    from sqlalchemy import select

    from cartguard.links import issue_link
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer, Order
    from cartguard.shop.models.orders import OPEN_STATUSES

    wanted = json.loads(sys.stdin.read())
    out = []
    with session_scope() as session:
        for customer_id, conversation_id in wanted:
            order = (
                session.execute(
                    select(Order)
                    .where(Order.customer_id == customer_id, Order.status.in_(OPEN_STATUSES))
                    .order_by(Order.id)
                )
                .scalars()
                .first()
            )
            if order is None:  # the seed made none: reopen the newest, as a new order would be
                order = (
                    session.execute(
                        select(Order)
                        .where(Order.customer_id == customer_id)
                        .order_by(Order.id.desc())
                    )
                    .scalars()
                    .first()
                )
                if order is None:
                    raise SystemExit(f"customer {customer_id} has no order at all")
                order.status = OPEN_STATUSES[-1]
                session.flush()
            link = issue_link(
                session,
                conversation_id=conversation_id,
                customer_id=customer_id,
                purpose="address",
                payload={"order_id": order.id},
            )
            out.append(
                {
                    "conversation_id": conversation_id,
                    "customer_id": customer_id,
                    "token": link.token,
                    "order_id": order.id,
                    "email": session.get(Customer, customer_id).email.lower(),
                }
            )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["issue"]:
        raise SystemExit(_issue_main())
    raise SystemExit("usage: python -m bench.forms issue < pairs.json")
