"""Adapters that keep personal data out of what Rasa persists: tracker store, broker, logs.

``redaction`` works on plain event dictionaries and imports nothing from Rasa; the other
modules subclass Rasa's classes and are configured in ``endpoints.yml``.
"""
