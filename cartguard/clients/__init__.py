"""Clients for external HTTP APIs: one class per API, so timeouts and auth live in one place."""
