"""Signed webchat session tickets: only tickets we issued verify."""

from __future__ import annotations

import secrets

import pytest

from cartguard.channels.sessions import issue_ticket, verify_ticket

KEY = secrets.token_bytes(32)


def test_issued_ticket_verifies_and_exposes_only_the_public_half() -> None:
    ticket = issue_ticket(KEY)
    conversation_id, signature = ticket.value.split(".")
    assert conversation_id == ticket.conversation_id and len(conversation_id) == 32
    assert verify_ticket(KEY, ticket.value) == ticket
    assert signature not in repr(ticket)
    assert issue_ticket(KEY).conversation_id != ticket.conversation_id


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),  # signature altered
        lambda v: ("f" if v[0] != "f" else "e") + v[1:],  # conversation id altered
        lambda v: v.split(".")[0],  # signature dropped
        lambda v: v + ".extra",
        lambda v: v.upper(),
        lambda v: " " + v,
    ],
)
def test_altered_tickets_do_not_verify(mutate) -> None:
    assert verify_ticket(KEY, mutate(issue_ticket(KEY).value)) is None


@pytest.mark.parametrize("value", [None, 42, "", ".", "a" * 10_000, ["x"], {"session_id": "x"}])
def test_garbage_does_not_verify_or_raise(value) -> None:
    assert verify_ticket(KEY, value) is None


def test_ticket_from_another_key_does_not_verify() -> None:
    assert verify_ticket(KEY, issue_ticket(secrets.token_bytes(32)).value) is None
