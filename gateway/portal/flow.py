"""Signing in and out, and the language switch.

``/portal/login`` starts an authorization-code request with PKCE (RFC 7636) against the gateway's
own authorization endpoint: a fresh verifier and ``state`` are kept in the key-value store under
the state, and the state is also set in a short-lived cookie, so the callback accepts only the
answer to a request this browser started (RFC 6749 section 10.12). ``/portal/callback`` redeems
the code at the token endpoint (in-process, over ASGI, as any client would over the network) and
opens the session. ``/portal/logout`` (a POST with the CSRF token) ends it: it revokes the
session's tokens at ``/oauth/revoke`` (RFC 7009), so that no access token of the session is
accepted any more, then deletes the session.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from urllib.parse import urlencode

import orjson
import structlog
from fastapi import APIRouter
from fastapi.responses import Response

from gateway.auth import tokens
from gateway.auth.codes import CHALLENGE_METHOD, new_verifier, s256
from gateway.auth.state import AUTHORIZE_PATH, REVOKE_PATH, TOKEN_PATH
from gateway.portal import api, i18n
from gateway.portal import session as sessions
from gateway.portal.context import AnyVisitor, PortalRefusal, redirect, store
from gateway.portal.i18n import N_
from gateway.portal.login import CALLBACK_PATH, redirect_uris
from gateway.portal.pages import overview
from gateway.portal.routing import PortalRoute
from gateway.portal.security import security_headers
from gateway.portal.session import PortalSession

router = APIRouter(route_class=PortalRoute)
log = structlog.get_logger("gateway.portal")

STATE_COOKIE = "portal_login_state"
_LOGIN_TTL_SECONDS = 600
_STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {"portal.css": "text/css; charset=utf-8"}


@router.get("/")
async def start(portal: AnyVisitor, expired: str | None = None) -> Response:
    if portal.session is not None:
        return await overview(portal)
    return await portal.page("start.html", expired=expired == "1")


@router.get("/login")
async def login(portal: AnyVisitor) -> Response:
    request = portal.request
    if portal.session is not None:
        return redirect("/portal/")
    state = secrets.token_urlsafe(24)
    verifier = new_verifier()
    record = orjson.dumps({"verifier": verifier, "locale": portal.locale})
    await request.app.state.kv.set(f"portal-login:{state}", record, _LOGIN_TTL_SECONDS)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": tokens.PORTAL_CLIENT_ID,
            "redirect_uri": redirect_uris(request)[0],
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": CHALLENGE_METHOD,
            "ui_locales": portal.locale,
        }
    )
    response = redirect(f"{AUTHORIZE_PATH}?{query}")
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=_LOGIN_TTL_SECONDS,
        path=CALLBACK_PATH,
        secure=sessions.cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/callback")
async def callback(
    portal: AnyVisitor,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    request = portal.request
    cookie = request.cookies.get(STATE_COOKIE)
    # compare_digest takes ASCII str only: bytes, so a stray non-ASCII state is a 400, not a 500.
    if (
        not state
        or not cookie
        or not secrets.compare_digest(state[:64].encode(), cookie[:64].encode())
    ):
        raise PortalRefusal(400, N_("The login could not be completed. Please try again."))
    record = await request.app.state.kv.get(f"portal-login:{state[:64]}")
    await request.app.state.kv.delete(f"portal-login:{state[:64]}")
    if record is None:
        raise PortalRefusal(400, N_("The login could not be completed. Please try again."))
    if error or not code:
        raise PortalRefusal(401, N_("The login was not completed."))
    login = orjson.loads(record)
    async with api.client(request) as http:
        answer = await http.post(
            TOKEN_PATH,
            data={
                "grant_type": "authorization_code",
                "code": code[:256],
                "redirect_uri": redirect_uris(request)[0],
                "client_id": tokens.PORTAL_CLIENT_ID,
                "code_verifier": login["verifier"],
            },
        )
    if answer.status_code != 200:
        raise PortalRefusal(401, N_("The login could not be completed. Please try again."))
    body = answer.json()
    now = store(request).now()
    session = PortalSession(
        ssin=_ssin_of(body["access_token"]),
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token"),
        token_expires_at=now + int(body.get("expires_in", 0)),
        locale=i18n.supported(login.get("locale")) or portal.locale,
        created_at=now,
        last_seen=now,
    )
    await store(request).save(session)
    response = redirect("/portal/")
    sessions.set_cookie(request, response, session)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
    return response


def _ssin_of(access_token: str) -> str:
    """The ``ssin`` claim of a token the token endpoint has just issued to us (its signature is
    checked by the API on every call; here it only names the patient in forms)."""
    payload = access_token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["ssin"])


@router.post("/logout")
async def logout(portal: AnyVisitor) -> Response:
    request = portal.request
    if portal.session is None:
        return redirect("/portal/")
    await portal.form()  # CSRF
    # RFC 7009, as any client would: each call ends the whole session on the gateway, its access
    # tokens included. Both are sent, so that a refresh token rotated by a concurrent request
    # still leaves the access token to name the session.
    async with api.client(request) as http:
        for token in (portal.session.access_token, portal.session.refresh_token):
            if token:
                answer = await http.post(
                    REVOKE_PATH, data={"token": token, "client_id": tokens.PORTAL_CLIENT_ID}
                )
                if answer.status_code != 200:
                    log.warning("portal_logout_revocation_failed", status=answer.status_code)
    await store(request).delete(portal.session)
    portal.session = None
    response = redirect("/portal/?signed_out=1")
    sessions.clear_cookie(request, response)
    return response


@router.post("/language")
async def language(portal: AnyVisitor) -> Response:
    """The language switch: kept in the session and in a cookie (for the login page and the next
    visit). Signed-in patients' forms carry the CSRF token; the start page's needs none (it
    changes nothing but the language)."""
    request = portal.request
    if portal.session is not None:
        form = await portal.form()
    else:
        try:
            form = await request.form(max_files=0, max_fields=8)
        except Exception as exc:
            raise PortalRefusal(400, N_("The form could not be read.")) from exc
    chosen = i18n.supported(str(form.get("lang") or ""))
    if chosen is None:
        raise PortalRefusal(400, N_("This language is not available."))
    back = str(form.get("next") or "/portal/")
    if not back.startswith("/portal/") or "//" in back or "\\" in back:
        back = "/portal/"  # never an open redirect
    portal.locale = chosen
    response = await portal.redirect(back)
    response.set_cookie(
        i18n.LANGUAGE_COOKIE,
        chosen,
        max_age=365 * 24 * 3600,
        path="/",
        secure=sessions.cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = _STATIC_TYPES.get(name)
    if media_type is None:
        raise PortalRefusal(404, N_("This page does not exist."))
    body = (_STATIC / name).read_bytes()
    return Response(body, media_type=media_type, headers=security_headers(cache=True))
