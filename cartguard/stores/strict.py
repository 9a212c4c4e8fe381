"""Strict start-up for Rasa: a configured tracker store or event broker loads, or Rasa stops.

Rasa 3.6 falls back silently when a custom class cannot be imported (tracker store ->
``InMemoryTrackerStore``, broker -> none) and wraps every store in ``FailSafeTrackerStore``,
which on a database error keeps the conversation in memory. For a store whose whole point
is what it does *not* keep, both are wrong: conversations would vanish on restart and
nothing would be redacted. :func:`make_rasa_strict` patches those three places.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class StoreConfigurationError(RuntimeError):
    """The tracker store or event broker in endpoints.yml cannot be loaded."""


def _describe(kind: str, type_name: str | None, exc: BaseException) -> str:
    return (
        f"the {kind} '{type_name}' configured in endpoints.yml could not be loaded "
        f"({exc.__class__.__name__}: {exc}). Rasa was stopped instead of falling back to "
        f"an in-memory {kind}; fix endpoints.yml (or the database it names) and start again."
    )


def make_rasa_strict() -> None:
    """Patch Rasa's store/broker factories and the fail-safe wrapper (idempotent)."""
    import rasa.core.agent as agent_module
    import rasa.core.brokers.broker as broker_module
    import rasa.core.tracker_store as store_module
    import rasa.shared.utils.common as common

    if getattr(store_module, "_cartguard_strict", False):
        return

    def load_store(domain: Any, store: Any, event_broker: Any = None) -> Any:
        try:
            cls = common.class_from_module_path(store.type)
        except (AttributeError, ImportError) as exc:
            raise StoreConfigurationError(_describe("tracker store", store.type, exc)) from exc
        if not (isinstance(cls, type) and issubclass(cls, store_module.TrackerStore)):
            raise StoreConfigurationError(
                f"the tracker store '{store.type}' in endpoints.yml is not a TrackerStore"
            )
        try:
            return cls(host=store.url, domain=domain, event_broker=event_broker, **store.kwargs)
        except Exception as exc:
            raise StoreConfigurationError(_describe("tracker store", store.type, exc)) from exc

    async def load_broker(broker_config: Any) -> Any:
        try:
            cls = common.class_from_module_path(broker_config.type)
            return await cls.from_endpoint_config(broker_config)
        except Exception as exc:
            raise StoreConfigurationError(
                _describe("event broker", broker_config.type, exc)
            ) from exc

    original_wrap = agent_module.Agent._create_tracker_store

    def no_silent_fallback(store: Any, domain: Any) -> Any:
        # Keep Rasa's fail-safe wrapper only for its own in-memory default: our store's
        # errors must surface, not be "saved" to memory unredacted.
        if store is not None and not isinstance(store, store_module.InMemoryTrackerStore):
            store.domain = domain
            return store
        return original_wrap(store, domain)

    store_module._load_from_module_name_in_endpoint_config = load_store
    broker_module._load_from_module_name_in_endpoint_config = load_broker
    agent_module.Agent._create_tracker_store = staticmethod(no_silent_fallback)
    store_module._cartguard_strict = True
    log.debug("strict tracker store / event broker loading enabled")
