"""Run an action the way the action server does and read what the shopper would see.

Actions send responses by name; :func:`texts` renders them from ``domain.yml`` with the values
the action passed, and fails when a placeholder was left without a value, so every test that
reads a reply also proves the response exists and is completely filled in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk.executor import CollectingDispatcher

from cartguard.responses import response_text

ROOT = Path(__file__).resolve().parents[2]
DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text())


def run_action(action: Any, tracker: Any) -> tuple[list[dict], list[dict]]:
    """Run ``action`` with the project's domain, as Rasa sends it to the action server."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


def rendered(message: dict) -> str:
    """The text the shopper reads for one dispatched message."""
    name = message.get("response")
    if not name:
        raise AssertionError(f"an action sent text instead of a domain response: {message}")
    skip = {"response", "text", "buttons", "template", "elements", "custom", "image", "attachment"}
    values = {k: v for k, v in message.items() if k not in skip}
    return response_text(name, **values)


def texts(messages: list[dict]) -> str:
    return "\n".join(rendered(m) for m in messages)


def responses(messages: list[dict]) -> list[str]:
    return [m.get("response") for m in messages]


def slot_events(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def extracted(tracker: Any, **slots: Any) -> Any:
    """``tracker`` as Rasa sends it to a form's validation action: ``slots`` were just
    extracted from the latest message (they are the trailing slot events)."""
    for name, value in slots.items():
        tracker.slots[name] = value
        tracker.events.append({"event": "slot", "name": name, "value": value})
    return tracker
