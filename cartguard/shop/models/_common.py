"""The declarative base and column helpers shared by the model modules.

``Base`` lives here, below ``cartguard.shop.db``, so that the models never import the engine
module and the engine module never needs the models: no import circle between them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import declarative_base

#: Declarative base of every Cartguard table (SQLAlchemy 1.4 with the 2.0-style ``future`` API).
Base = declarative_base()


def utcnow() -> datetime:
    """Timezone-aware now; stored as naive UTC because SQLite has no time zones."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
