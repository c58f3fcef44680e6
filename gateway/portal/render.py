"""Jinja2 templates, one environment per language (a gettext install is per environment, so
concurrent requests in different languages never share one), and the HTML response."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.portal import i18n
from gateway.portal.security import security_headers

TEMPLATE_DIR = Path(__file__).parent / "templates"


@lru_cache(maxsize=len(i18n.LOCALES))
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    formatter = i18n.Formatter(locale)
    env.filters["date"] = formatter.date
    env.filters["datetime"] = formatter.datetime
    env.filters["money"] = formatter.money
    env.globals["locale"] = locale
    env.globals["locales"] = i18n.LOCALES
    return env


def gettext(locale: str, message: str) -> str:
    text: str = i18n.translations(locale).gettext(message)
    return text


def page(locale: str, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    html = environment(locale).get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=security_headers())
