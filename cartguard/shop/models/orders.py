"""Orders with items, a status history, a shipping address, and refunds."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import relationship

from cartguard.shop.models._common import Base
from cartguard.shop.models._common import utcnow

#: statuses in lifecycle order; an order can be cancelled or re-addressed only before "shipped"
ORDER_STATUSES = ("placed", "processing", "shipped", "delivered", "cancelled")
OPEN_STATUSES = ("placed", "processing")


class Order(Base):
    __tablename__ = "orders"

    id = Column(String(16), primary_key=True)  # public id, e.g. CG-482913
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False, default="placed")
    placed_at = Column(DateTime, nullable=False, default=utcnow)
    total = Column(Numeric(10, 2), nullable=False)
    currency = Column(String(3), nullable=False, default="USD")
    carrier = Column(String(40), nullable=True)
    tracking_number = Column(String(40), nullable=True)
    estimated_delivery = Column(DateTime, nullable=True)
    ship_name = Column(String(200), nullable=False)
    ship_street = Column(String(200), nullable=False)
    ship_city = Column(String(100), nullable=False)
    ship_postcode = Column(String(20), nullable=False)
    ship_country = Column(String(2), nullable=False, default="US")

    customer = relationship("Customer", back_populates="orders")
    items = relationship("OrderItem", back_populates="order", cascade="all, delete-orphan")
    history = relationship(
        "OrderStatusEvent",
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="OrderStatusEvent.at",
    )
    refunds = relationship("Refund", back_populates="order", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OrderItem(Base):
    __tablename__ = "order_items"

    id = Column(Integer, primary_key=True)
    order_id = Column(String(16), ForeignKey("orders.id"), nullable=False, index=True)
    sku = Column(String(32), nullable=False)
    name = Column(String(200), nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    unit_price = Column(Numeric(10, 2), nullable=False)

    order = relationship("Order", back_populates="items")


class OrderStatusEvent(Base):
    __tablename__ = "order_status_events"

    id = Column(Integer, primary_key=True)
    order_id = Column(String(16), ForeignKey("orders.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    note = Column(Text, nullable=True)

    order = relationship("Order", back_populates="history")


class Refund(Base):
    __tablename__ = "refunds"

    id = Column(String(16), primary_key=True)  # e.g. RF-104233
    order_id = Column(String(16), ForeignKey("orders.id"), nullable=False, index=True)
    amount = Column(Numeric(10, 2), nullable=False)
    status = Column(String(20), nullable=False, default="requested")  # requested/approved/paid
    reason = Column(String(200), nullable=True)
    requested_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)

    order = relationship("Order", back_populates="refunds")
