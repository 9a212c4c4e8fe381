"""Hardened input channels: webchat (socket.io) and Facebook Messenger.

Everything a shopper types reaches Rasa only through these channels, so they are where the
security model is enforced before any NLU, tracker store or log sees the message:

* identity comes only from a verified signature (a login token in webchat, an account link in
  Messenger) and is re-checked on every message;
* webchat session ids are issued and signed by the server and bound to their first owner;
* Messenger webhooks must carry a valid ``X-Hub-Signature-256`` and are processed once;
* every message passes rate limits, a length cap and edge redaction (:mod:`.edge`);
* client-supplied metadata never reaches Rasa, only the keys the channel itself sets.

The modules are small and mostly free of Rasa: :mod:`.sessions` (signed ids), :mod:`.guard`
(limits), :mod:`.ratelimit`, :mod:`.dedupe`, :mod:`.edge`, :mod:`.graph_client` and
:mod:`cartguard.account_links`; :mod:`.webchat` and :mod:`.messenger` adapt them to Rasa 3.6.
"""
