"""Monitoring, anomaly detection and incident response.

* :mod:`.metrics` - the Prometheus registry, ``record_*`` helpers and the ``/metrics`` route;
* :mod:`.signals` - suspicious channel events counted per minute in the database;
* :mod:`.anomaly` - the rules over the audit log and the signals, and ``scan``;
* :mod:`.events` - security events: raised once per window, audited, logged;
* :mod:`.incident` - containment: revoke sessions, rotate keys, block, maintenance;
* :mod:`.service` - wiring into the web service and the action server.

Nothing here imports Rasa, so the channels, the actions and the CLI can all use it.
"""
