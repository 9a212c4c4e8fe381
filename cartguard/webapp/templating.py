"""Jinja2 rendering with autoescape always on, so shopper input can never become markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

TEMPLATE_DIR = Path(__file__).parent / "templates"


def make_environment() -> Environment:
    """Autoescape every template (not only ``.html``) and fail on undefined names."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
    """Render ``template`` with what every page needs: the CSRF token and who is logged in."""
    env: Environment = request.app.ctx.jinja
    base = {
        "csrf_token": request.ctx.csrf_token,
        "customer_name": getattr(request.ctx, "customer_name", None),
        "logged_in": getattr(request.ctx, "customer_id", None) is not None,
        "shop_name": "Cartguard Outdoor",
    }
    base.update(context)
    html = env.get_template(template).render(**base)
    return response.html(html, status=status)
