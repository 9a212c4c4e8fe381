"""Customers and their saved payment methods (tokenized: only a mask is readable)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import relationship

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow


class Customer(Base):
    __tablename__ = "customers"

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    email = Column(String(320), nullable=False, unique=True)
    phone = Column(String(40), nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    #: set when the shopper exercised the right to erasure; personal fields are then replaced
    pseudonymized = Column(Boolean, nullable=False, default=False)

    orders = relationship("Order", back_populates="customer", order_by="Order.placed_at.desc()")
    invoices = relationship("Invoice", back_populates="customer")
    balances = relationship("Balance", back_populates="customer")
    payment_methods = relationship("PaymentMethod", back_populates="customer")


class PaymentMethod(Base):
    """A saved card: ``vault_token`` points to the vault; ``mask`` is BIN (<= 6) + last 4."""

    __tablename__ = "payment_methods"

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    brand = Column(String(20), nullable=False)
    mask = Column(String(32), nullable=False)
    last4 = Column(String(4), nullable=False)
    expiry = Column(String(7), nullable=False)  # MM/YYYY
    vault_token = Column(String(80), nullable=True)
    is_default = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    customer = relationship("Customer", back_populates="payment_methods")
