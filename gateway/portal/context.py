"""What every portal handler works with: the patient's session (if any), the language, the FHIR
client, CSRF checking, rendering and redirects that keep the session alive (idle timeout)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from gateway.auth import tokens
from gateway.auth.state import TOKEN_PATH
from gateway.portal import api, i18n, render
from gateway.portal import session as sessions
from gateway.portal.i18n import N_
from gateway.portal.security import security_headers
from gateway.portal.session import Flash, PortalSession, SessionStore

log = structlog.get_logger("gateway.portal")
REFRESH_MARGIN_SECONDS = 60
MAX_FORM_FIELDS = 32


class NotSignedIn(Exception):
    """No valid session: back to the start page (``expired``: there was one, it ended)."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("not signed in")
        self.expired = expired


class PortalRefusal(Exception):
    """An error page: status and an English message (translated when shown)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def store(request: Request) -> SessionStore:
    found: SessionStore | None = getattr(request.app.state, "portal_sessions", None)
    if found is None:
        state = request.app.state
        found = SessionStore(
            state.kv,
            state.keyring,
            idle_seconds=state.settings.portal_idle_timeout_seconds,
            max_seconds=state.settings.portal_session_max_seconds,
            clock=lambda: float(state.clock().timestamp()),  # the app's one clock
        )
        request.app.state.portal_sessions = found
    return found


def chosen_locale(request: Request, session: PortalSession | None = None) -> str:
    if session is not None and i18n.supported(session.locale):
        return session.locale
    return i18n.supported(request.cookies.get(i18n.LANGUAGE_COOKIE)) or i18n.negotiate(
        request.headers.get("accept-language")
    )


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=security_headers())


@dataclass
class Portal:
    request: Request
    session: PortalSession | None
    locale: str

    @property
    def signed_in(self) -> PortalSession:
        if self.session is None:
            raise NotSignedIn(expired=False)
        return self.session

    @property
    def fhir(self) -> api.Fhir:
        return api.Fhir(self.request, self.signed_in.access_token)

    def flash(self, message: str, level: str = "info") -> None:
        if self.session is not None:
            self.session.flash.append(Flash(message, level))

    async def form(self) -> FormData:
        """The posted form, its CSRF token checked (every POST form of the portal carries one)."""
        try:
            form = await self.request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        except Exception as exc:  # a malformed body is the client's error, never a 500
            raise PortalRefusal(400, N_("The form could not be read.")) from exc
        sent = form.get("csrf")
        expected = self.session.csrf if self.session is not None else None
        if (
            not isinstance(sent, str)
            or expected is None
            or not hmac.compare_digest(sent.encode(), expected.encode())
        ):
            log.info("portal_csrf_refused")
            raise PortalRefusal(403, N_("This form has expired. Please go back and try again."))
        return form

    async def page(self, template: str, status: int = 200, **context: Any) -> Response:
        session = self.session
        values: dict[str, Any] = {
            "session": session,
            "csrf": session.csrf if session else "",
            "flashes": session.take_flash() if session else [],
            "path": self.request.url.path,
            **context,
        }
        response = render.page(self.locale, template, values, status=status)
        await self.keep(response)
        return response

    async def redirect(self, location: str) -> Response:
        response = redirect(location)
        await self.keep(response)
        return response

    async def keep(self, response: Response) -> None:
        """Save the session (sliding idle timeout; flash messages; language)."""
        if self.session is not None:
            self.session.last_seen = store(self.request).now()
            self.session.locale = self.locale
            await store(self.request).save(self.session)


async def _refreshed(request: Request, session: PortalSession) -> PortalSession | None:
    """A new access token from the refresh token (RFC 6749 section 6), or None: session over."""
    if session.refresh_token is None:
        return None
    async with api.client(request) as http:
        response = await http.post(
            TOKEN_PATH,
            data={
                "grant_type": "refresh_token",
                "refresh_token": session.refresh_token,
                "client_id": tokens.PORTAL_CLIENT_ID,
            },
        )
    if response.status_code != 200:
        return None
    body = response.json()
    session.access_token = body["access_token"]
    session.refresh_token = body.get("refresh_token")
    session.token_expires_at = store(request).now() + int(body.get("expires_in", 0))
    return session


async def portal(request: Request) -> Portal:
    """The session if there is a valid one (public pages), else none."""
    cookie = sessions.session_cookie(request)
    session = await store(request).load(cookie)
    if (
        session is not None
        and session.token_expires_at - store(request).now() < REFRESH_MARGIN_SECONDS
    ):
        session = await _refreshed(request, session)
        if session is None:
            await store(request).delete_id(cookie)
    locale = chosen_locale(request, session)
    request.state.portal_locale = locale
    request.state.portal_cookie_sent = cookie is not None
    return Portal(request, session, locale)


async def signed_in(request: Request) -> Portal:
    """Pages of a signed-in patient; others are sent to the start page."""
    found = await portal(request)
    if found.session is None:
        raise NotSignedIn(expired=sessions.session_cookie(request) is not None)
    return found


AnyVisitor = Annotated[Portal, Depends(portal)]
Patient = Annotated[Portal, Depends(signed_in)]
