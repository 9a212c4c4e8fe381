"""The sensitive-intent policy, read from the designer-edited ``security.yml``.

Keeping the policy as data means a conversation designer marks an intent sensitive without
touching Python, and every consumer (actions, tracker store, tests) reads the same answer.
A malformed file fails at load time with a message naming the problem, rather than silently
treating everything as not sensitive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from cartguard.settings import PROJECT_ROOT

DEFAULT_POLICY_FILE = PROJECT_ROOT / "security.yml"


class PolicyError(ValueError):
    """security.yml is missing a section or has a value of the wrong kind."""


@dataclass(frozen=True)
class StepUpRules:
    idle_seconds: int
    absolute_seconds: int
    max_failures: int
    lockout_seconds: int


@dataclass(frozen=True)
class SecurityPolicy:
    sensitive_intents: dict[str, str]  # intent -> action serving it
    sensitive_slots: frozenset[str]
    stepup: StepUpRules
    public_channels: frozenset[str]

    @property
    def sensitive_actions(self) -> frozenset[str]:
        return frozenset(self.sensitive_intents.values())

    def is_public_channel(self, channel: str | None) -> bool:
        return (channel or "") in self.public_channels


def _minutes(section: dict, key: str) -> int:
    value = section.get(key)
    if not isinstance(value, int) or value <= 0:
        raise PolicyError(f"security.yml: stepup.{key} must be a positive whole number of minutes")
    return value * 60


def parse_policy(data: dict) -> SecurityPolicy:
    intents = data.get("sensitive_intents")
    if not isinstance(intents, dict) or not intents:
        raise PolicyError("security.yml: sensitive_intents must map each intent to its action")
    for intent, action in intents.items():
        if not isinstance(action, str) or not action.startswith("action_"):
            raise PolicyError(f"security.yml: intent {intent!r} needs an action name (action_...)")
    stepup = data.get("stepup") or {}
    max_failures = stepup.get("max_failures")
    if not isinstance(max_failures, int) or max_failures <= 0:
        raise PolicyError("security.yml: stepup.max_failures must be a positive whole number")
    return SecurityPolicy(
        sensitive_intents=dict(intents),
        sensitive_slots=frozenset(data.get("sensitive_slots") or ()),
        stepup=StepUpRules(
            idle_seconds=_minutes(stepup, "idle_minutes"),
            absolute_seconds=_minutes(stepup, "absolute_minutes"),
            max_failures=max_failures,
            lockout_seconds=_minutes(stepup, "lockout_minutes"),
        ),
        public_channels=frozenset(data.get("public_channels") or ()),
    )


def load_policy(path: Path | None = None) -> SecurityPolicy:
    """Read and validate the policy file (``CARTGUARD_SECURITY_POLICY`` overrides the path)."""
    path = path or Path(os.environ.get("CARTGUARD_SECURITY_POLICY", DEFAULT_POLICY_FILE))
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"security policy file not found: {path}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path} must be a YAML mapping")
    return parse_policy(data)


@lru_cache(maxsize=1)
def get_policy() -> SecurityPolicy:
    """The process-wide policy (cached; ``get_policy.cache_clear()`` after editing the file)."""
    return load_policy()
