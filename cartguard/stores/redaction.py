"""Redaction of serialised Rasa events (plain dicts), shared by the tracker store and brokers.

Rules:

* every string anywhere in the event goes through :func:`cartguard.pii.redact`, except
  structural fields (event type, action/intent names, timestamps, ids);
* slots named in ``security.yml``'s ``sensitive_slots`` lose their value (a vault token or a
  card mask is kept: it is already safe and the action server may need it), and so do
  entities with those names;
* metadata keeps harmless keys only: anything that looks like a credential (``auth_token``,
  ``*secret*``, ``*password*``, cookies, signatures ...) is dropped;
* the number and order of events never change: one event in, one event out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cartguard.pii import redact
from cartguard.pii.tokens import CARD_MASK_RE, TOKEN_RE

REDACTED = "<REDACTED>"

_SECRET_KEY = re.compile(
    r"token|secret|passw|pwd|auth|cookie|session_key|signature|api[_-]?key|credential|otp|cvv"
    r"|cvc|card_?number|pan\b|jwt|bearer|private",
    re.IGNORECASE,
)
# Fields whose values are identifiers chosen by the bot designer or Rasa, never user data.
_STRUCTURAL = frozenset(
    {
        "event",
        "sender_id",
        "name",
        "policy",
        "timestamp",
        "confidence",
        "intent_name",
        "action_name",
        "input_channel",
        "message_id",
        "entity",
        "extractor",
        "role",
        "group",
        "start",
        "end",
        "processors",
        "hide_rule_turn",
        "use_text_for_featurization",
        "kill_on_user_msg",
        "utter_action",
        "template_name",
        "id",
        "retrieval_intent",
    }
)
_SESSION_METADATA_SLOT = "session_started_metadata"


def _is_safe_already(value: str) -> bool:
    return bool(TOKEN_RE.fullmatch(value) or CARD_MASK_RE.fullmatch(value))


def redact_text(text: str, expect: Iterable[str] = ()) -> str:
    return redact(text, expect).text


def redact_value(value: Any, expect: Iterable[str] = ()) -> Any:
    """Redact every string in a JSON-like value (dicts, lists, scalars)."""
    if isinstance(value, str):
        return redact_text(value, expect)
    if isinstance(value, Mapping):
        return {
            k: (v if k in _STRUCTURAL and not isinstance(v, (dict, list)) else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v, expect) for v in value]
    return value


def redact_metadata(metadata: Any) -> Any:
    """Drop credential-like keys at any depth; redact personal data in what remains."""
    if isinstance(metadata, Mapping):
        return {
            key: redact_metadata(value)
            for key, value in metadata.items()
            if not (isinstance(key, str) and _SECRET_KEY.search(key))
        }
    if isinstance(metadata, list):
        return [redact_metadata(v) for v in metadata]
    if isinstance(metadata, str):
        return redact_text(metadata)
    return metadata


def _sensitive_slot_value(value: Any) -> Any:
    if isinstance(value, str):
        return value if _is_safe_already(value) else REDACTED
    return None


def _redact_entities(entities: Any, sensitive: frozenset[str]) -> Any:
    if not isinstance(entities, list):
        return redact_value(entities)
    out = []
    for entity in entities:
        if isinstance(entity, Mapping) and entity.get("entity") in sensitive:
            entity = {**entity, "value": _sensitive_slot_value(entity.get("value"))}
            if "text" in entity:
                entity["text"] = REDACTED
            out.append(redact_value(entity))
        else:
            out.append(redact_value(entity))
    return out


def redact_event(
    event: Mapping[str, Any],
    sensitive_slots: Iterable[str] = (),
    expect: Iterable[str] = (),
) -> dict[str, Any]:
    """Return a redacted copy of one serialised event (``Event.as_dict()`` shape)."""
    sensitive = frozenset(sensitive_slots)
    out: dict[str, Any] = {}
    kind = event.get("event")
    for key, value in event.items():
        if key == "metadata":
            out[key] = redact_metadata(value)
        elif key in _STRUCTURAL and not isinstance(value, (dict, list)):
            out[key] = value
        elif key == "text" and isinstance(value, str):
            out[key] = redact_text(value, expect)
        elif key == "parse_data" and isinstance(value, Mapping):
            out[key] = {
                k: (
                    _redact_entities(v, sensitive)
                    if k == "entities"
                    else redact_text(v, expect)
                    if k == "text" and isinstance(v, str)
                    else redact_metadata(v)
                    if k == "metadata"
                    else redact_value(v)
                )
                for k, v in value.items()
            }
        elif key == "entities":
            out[key] = _redact_entities(value, sensitive)
        elif key == "value" and kind == "slot":
            name = event.get("name")
            if name in sensitive:
                out[key] = _sensitive_slot_value(value)
            elif name == _SESSION_METADATA_SLOT:
                out[key] = redact_metadata(value)
            else:
                out[key] = redact_value(value)
        else:
            out[key] = redact_value(value)
    return out


def expected_secrets(intent: str | None, requested_slot: str | None) -> frozenset[str]:
    """What the dialogue was waiting for when a user message arrived (widens OTP/password)."""
    expect: set[str] = set()
    slot = (requested_slot or "").lower()
    if intent == "provide_otp" or "otp" in slot or "code" in slot:
        expect.add("OTP_CODE")
    if "password" in slot:
        expect.add("PASSWORD")
    return frozenset(expect)
