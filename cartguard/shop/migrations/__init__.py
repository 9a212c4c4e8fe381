"""Alembic migrations of the shop and security schema (every table in ``cartguard.shop.models``).

Run by ``cartguard db upgrade`` (``make run`` does it before starting anything; a deployment runs
it once per release, before the new replicas start). Rasa's own tracker tables are not ours and
are not migrated here.
"""
