"""Column helpers shared by the model modules."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Timezone-aware now; stored as naive UTC because SQLite has no time zones."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
