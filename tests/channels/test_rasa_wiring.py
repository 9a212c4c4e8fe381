"""The repository's credentials.yml loads our channels through Rasa's own loader."""

from __future__ import annotations

from cartguard.channels.messenger import SecureFacebookInput
from cartguard.channels.webchat import SecureSocketIOInput
from cartguard.keys import load_keys
from cartguard.settings import PROJECT_ROOT


def test_credentials_yml_selects_the_hardened_channels(data_dir, monkeypatch) -> None:
    from rasa.core.run import create_http_input_channels

    keys = load_keys()
    for name in ("messenger_verify_token", "messenger_app_secret", "messenger_page_token"):
        monkeypatch.setenv(f"CARTGUARD_{name.upper()}", keys.get(name))

    channels = create_http_input_channels(None, str(PROJECT_ROOT / "credentials.yml"))

    by_type = {type(c): c for c in channels}
    assert set(by_type) == {SecureSocketIOInput, SecureFacebookInput}
    webchat = by_type[SecureSocketIOInput]
    assert (webchat.name(), webchat.metadata_key, webchat.user_message_evt) == (
        "socketio",
        "customData",
        "user_uttered",
    )
    messenger = by_type[SecureFacebookInput]
    assert messenger.name() == "facebook"
    assert messenger.fb_secret == keys.get("messenger_app_secret")


def test_unexpanded_placeholders_never_become_secrets(data_dir) -> None:
    channel = SecureFacebookInput.from_credentials(
        {"verify": "${X}", "secret": "${CARTGUARD_MESSENGER_APP_SECRET}", "page-access-token": ""}
    )
    keys = load_keys()
    assert channel.fb_secret == keys.get("messenger_app_secret")
    assert channel.fb_verify == keys.get("messenger_verify_token")
    assert channel.fb_access_token == keys.get("messenger_page_token")
