"""Maintenance mode: during an incident, sensitive requests answer "not available right now"
while everything else keeps working. Stored in the database so every replica sees it at once.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cartguard.audit import record
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.ops import OpsFlag

FLAG = "maintenance"


def is_enabled(session: Session) -> bool:
    flag = session.get(OpsFlag, FLAG)
    return flag is not None and flag.value == "on"


def set_enabled(session: Session, enabled: bool, *, actor: str) -> None:
    flag = session.get(OpsFlag, FLAG)
    value = "on" if enabled else "off"
    if flag is None:
        session.add(OpsFlag(name=FLAG, value=value, set_by=actor, updated_at=utcnow()))
    else:
        flag.value, flag.set_by, flag.updated_at = value, actor, utcnow()
    record(session, actor, f"maintenance.{value}")
