"""``PortalRoute``: every portal response carries the security headers, and every failure is a
page in the patient's language (never a JSON OperationOutcome, never a 500 for bad input):

- no session: 303 to the start page (``?expired=1`` when the session timed out);
- the API refused (403, e.g. ``not-own-data`` when an id of another patient is typed into a URL):
  a 403 page; 404: a 404 page; 401: the session is over;
- a CSRF failure or an unreadable form: 403 / 400 pages.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from gateway.portal import i18n, render
from gateway.portal.api import ApiError
from gateway.portal.context import NotSignedIn, PortalRefusal, redirect
from gateway.portal.i18n import N_
from gateway.portal.security import security_headers

log = structlog.get_logger("gateway.portal")

_MESSAGES = {
    400: N_("The request could not be understood."),
    401: N_("Your session has ended. Please log in again."),
    403: N_("You may not see this page."),
    404: N_("This page does not exist."),
    405: N_("This page does not exist."),
    409: N_("This change is not possible in the current state."),
    422: N_("The data sent was not accepted."),
    429: N_("Too many requests. Please wait a moment."),
}


def _locale(request: Request) -> str:
    chosen = getattr(request.state, "portal_locale", None)
    if chosen:
        return str(chosen)
    return i18n.supported(request.cookies.get(i18n.LANGUAGE_COOKIE)) or i18n.negotiate(
        request.headers.get("accept-language")
    )


def error_page(request: Request, status: int, message: str | None = None) -> Response:
    text = message or _MESSAGES.get(status, _MESSAGES[400])
    return render.page(
        _locale(request),
        "error.html",
        {
            "session": None,
            "csrf": "",
            "flashes": [],
            "path": request.url.path,
            "status": status,
            "message": text,
        },
        status=status,
    )


class PortalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except NotSignedIn as exc:
                response = redirect("/portal/?expired=1" if exc.expired else "/portal/")
            except ApiError as exc:
                log.info("portal_api_refused", status=exc.status, reason=exc.reason[:64])
                if exc.status == 401:
                    response = redirect("/portal/?expired=1")
                else:
                    status = exc.status if exc.status in _MESSAGES else 400
                    response = error_page(request, status)
            except PortalRefusal as exc:
                response = error_page(request, exc.status, exc.message)
            except RequestValidationError:
                response = error_page(request, 400)
            except HTTPException as exc:
                response = error_page(request, exc.status_code if exc.status_code < 500 else 400)
            for name, value in security_headers().items():
                response.headers.setdefault(name, value)
            return response

        return portal_handler
