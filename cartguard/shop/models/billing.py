"""Invoices (kept for the law's retention period) and balances (store credit, gift card, points)."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import relationship

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow

BALANCE_TYPES = ("store_credit", "gift_card", "loyalty_points")


class Invoice(Base):
    __tablename__ = "invoices"

    id = Column(String(20), primary_key=True)  # e.g. INV-2026-00123
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    order_id = Column(String(16), ForeignKey("orders.id"), nullable=True, index=True)
    issued_on = Column(Date, nullable=False)
    amount = Column(Numeric(10, 2), nullable=False)
    currency = Column(String(3), nullable=False, default="USD")
    status = Column(String(20), nullable=False, default="paid")  # paid/due/overdue
    billing_name = Column(String(200), nullable=False)

    customer = relationship("Customer", back_populates="invoices")
    order = relationship("Order")


class Balance(Base):
    __tablename__ = "balances"
    __table_args__ = (UniqueConstraint("customer_id", "kind"),)

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    kind = Column(String(20), nullable=False)  # one of BALANCE_TYPES
    amount = Column(Numeric(12, 2), nullable=False, default=0)  # points are whole numbers
    currency = Column(String(3), nullable=True)  # None for loyalty points
    updated_at = Column(DateTime, nullable=False, default=utcnow)

    customer = relationship("Customer", back_populates="balances")
