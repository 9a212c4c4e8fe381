"""rasa-sdk plugins of Cartguard: the action server accepts calls only from our Rasa.

rasa-sdk 3.6 imports this top-level package at start-up (``rasa_sdk.plugin``) and calls
:func:`init_hooks`; the registered plugin then adds its Sanic extensions to the action
server. The action server has no authentication of its own, so without this plugin anyone who
can reach port 5055 could run actions (and read account data) by naming a sender id.

``python -m cartguard.action_server`` refuses to start unless this plugin is attached.
"""

from __future__ import annotations

import pluggy

from rasa_sdk_plugins.action_auth import PLUGIN_NAME, ActionAuthPlugin


def init_hooks(manager: pluggy.PluginManager) -> None:
    """Register Cartguard's plugins with rasa-sdk's plugin manager (idempotent)."""
    if manager.get_plugin(PLUGIN_NAME) is None:
        manager.register(ActionAuthPlugin(), name=PLUGIN_NAME)
