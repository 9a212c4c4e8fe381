"""The assistant's sentences, read by name from ``domain.yml`` for code outside the dialogue.

Every shopper-facing sentence lives in ``domain.yml``'s responses, where conversation designers
edit it; actions choose responses by name and Rasa fills them in. A few of the same sentences
are shown outside Rasa too (the secure code form says exactly what the chat says about a wrong
code), and read them here, by name, so there is still one place to edit the words.

Reading only YAML, this module imports nothing from Rasa. A missing response or placeholder
raises an error naming it instead of showing a half-filled sentence.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cartguard.settings import PROJECT_ROOT

DEFAULT_DOMAIN_FILE = PROJECT_ROOT / "domain.yml"
PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")  # the placeholder syntax of Rasa's interpolator


class ResponseMissing(KeyError):
    """domain.yml has no response (or no text variant) of that name."""


@lru_cache(maxsize=1)
def domain_responses() -> dict[str, list[dict[str, Any]]]:
    """``responses`` of domain.yml (``CARTGUARD_DOMAIN_FILE`` overrides the path)."""
    path = Path(os.environ.get("CARTGUARD_DOMAIN_FILE", DEFAULT_DOMAIN_FILE))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(data.get("responses") or {})


def response_text(name: str, **values: object) -> str:
    """The first text variant of response ``name`` meant for any channel and any slot values
    (no ``channel``, no ``condition``), with its placeholders filled from ``values``."""
    variants = domain_responses().get(name) or []
    general = [v for v in variants if not v.get("condition") and not v.get("channel")]
    texts = [v["text"] for v in general if "text" in v]
    if not texts:
        raise ResponseMissing(f"domain.yml has no text response named {name!r}")

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ResponseMissing(f"response {name!r} needs a value for {{{key}}}")
        return str(values[key])

    return PLACEHOLDER.sub(fill, texts[0])
