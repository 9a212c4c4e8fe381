"""The rules behind the channel guards, as properties: control-character stripping and the
typed-intent parser (checked against Rasa's own parser on generated text)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartguard.channels import intent_guard
from cartguard.control_chars import has_control_chars, strip_control_chars

CI = settings(deadline=None, max_examples=300)
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# --- control characters ------------------------------------------------------------------------

_ESCAPES = st.sampled_from(
    [
        "\x1b[2J",
        "\x1b[1;31m",
        "\x1b]8;;https://evil.example\x07",
        "\x1b]0;title\x1b\\",
        "\x1bP+q\x9c",
        "\x9b2J",
        "\x1b7",
        "\x1b",
        "\x1b[",
        "\r",
        "\r\n",
        "\x00",
        "\x85",
        "\u202e",
    ]
)
_MIXED = st.lists(st.one_of(st.text(max_size=8), _ESCAPES), max_size=30).map("".join)


@CI
@given(_MIXED)
def test_stripped_text_has_no_control_character_and_stripping_twice_changes_nothing(
    text: str,
) -> None:
    once = strip_control_chars(text)
    assert not FORBIDDEN.search(once)
    assert "\x1b" not in once and "\r" not in once
    assert strip_control_chars(once) == once
    assert not has_control_chars(once)


@CI
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_text_without_controls_is_unchanged(text: str) -> None:
    text = FORBIDDEN.sub("", text)  # the bidi overrides are format characters, not Cc
    assert strip_control_chars(text) == text


@CI
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_newlines_and_tabs_survive(text: str) -> None:
    assert strip_control_chars(f"a\n{text}\tb").count("\t") >= 1


def test_whole_sequences_go_not_just_the_escape_byte() -> None:
    assert strip_control_chars("\x1b[2J\x1b[1;1Hhello\x1b[0m") == "hello"
    assert strip_control_chars("see \x1b]8;;https://evil.example\x07here\x1b]8;;\x07") == "see here"
    assert strip_control_chars("line1\rline2\r\nline3") == "line1\nline2\nline3"
    assert strip_control_chars("emoji 🙂 and ümlauts, 漢字") == "emoji 🙂 and ümlauts, 漢字"


def test_a_flood_of_escape_sequences_is_emptied() -> None:
    flood = "\x1b[31m\x1b]8;;x\x07\x9b1m\x00" * 1000  # about 16 KB
    assert strip_control_chars(flood) == ""


def test_only_text_is_accepted() -> None:
    with pytest.raises(TypeError):
        strip_control_chars(b"\x1b[2J")  # type: ignore[arg-type]


# --- typed intents -----------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["/", "EXTERNAL_card_saved", "external_x", "greet", "{", "}", '"a": 1', "@", "0.5", " ", "\n"]
)
_COMMANDS = st.lists(_PIECES, min_size=1, max_size=10).map("".join)


@CI
@given(_COMMANDS)
def test_the_guard_reads_commands_exactly_like_rasa(text: str) -> None:
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.constants import ENTITIES, INTENT_NAME_KEY

    rasa_match = YAMLStoryReader._regex_message_pattern().match(text.strip())
    ours = intent_guard.parse_command(text)
    if rasa_match is None or not rasa_match.group(INTENT_NAME_KEY).strip():
        assert ours is None
    else:
        assert ours is not None
        assert ours.intent == rasa_match.group(INTENT_NAME_KEY).strip()
        assert ours.has_entities == (rasa_match.group(ENTITIES) is not None)


@CI
@given(st.text(max_size=30), st.text(min_size=1, max_size=30))
def test_reserved_intents_and_any_entities_need_an_offer(suffix: str, entity: str) -> None:
    assert intent_guard.needs_offer(f"/EXTERNAL_{suffix}".replace("{", "").replace("@", ""))
    if "\n" not in entity and "\r" not in entity:
        assert intent_guard.needs_offer("/track_order{" + entity + "}")


@pytest.mark.parametrize(
    "text",
    ["hello", "/greet", "/contact_human_agent", " /deny ", "1/2", "a/EXTERNAL_x", "/", "/{}"],
)
def test_ordinary_text_and_plain_intents_need_no_offer(text: str) -> None:
    assert not intent_guard.needs_offer(text)


def test_payloads_of_skips_links_and_junk() -> None:
    buttons = [
        {"title": "a", "payload": '/track_order{"order_id":"CG-1"}'},
        {"title": "b", "type": "web_url", "url": "http://x/s/abc", "payload": "http://x/s/abc"},
        {"title": "c", "payload": ""},
        "not a button",
        {"title": "d"},
    ]
    assert intent_guard.payloads_of(buttons) == ['/track_order{"order_id":"CG-1"}']
    assert intent_guard.payloads_of(None) == []


def test_offers_are_per_conversation_and_stored_only_as_digests(channel_db) -> None:
    from sqlalchemy import select

    from cartguard.shop.db import session_scope
    from cartguard.shop.models.offers import OfferedPayload

    payload = '/track_order{"order_id":"CG-424242"}'
    with session_scope() as session:
        stored = intent_guard.remember_offered_in(
            session, "conv-offer-a", [payload, "/greet", payload, "hello"]
        )
        assert stored == 1  # only what needs an offer is kept, once
    with session_scope() as session:
        assert intent_guard.allowed_text_in(session, "conv-offer-a", f"  {payload}\n")
        assert not intent_guard.allowed_text_in(session, "conv-offer-b", payload)
        altered = payload.replace("424242", "424243")
        assert not intent_guard.allowed_text_in(session, "conv-offer-a", altered)
        assert not intent_guard.allowed_text_in(session, "x" * 65, payload)
        rows = session.execute(select(OfferedPayload)).scalars().all()
        assert rows and all("CG-424242" not in row.payload_digest for row in rows)
        assert intent_guard.forget_conversation(session, "conv-offer-a") == 1
        assert not intent_guard.allowed_text_in(session, "conv-offer-a", payload)
