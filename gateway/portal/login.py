"""``GET/POST /oauth/authorize``: the authorization endpoint (RFC 6749 section 4.1.1) and the
gateway's own login page, the stand-in for the national identity service (FAS/CSAM, PO-1).

Requests are checked in the order RFC 6749 section 4.1.2.1 asks: a wrong ``client_id`` or
``redirect_uri`` is shown as an error page and never redirected (an open redirector otherwise);
every other error goes back to the client's redirect URI with ``error`` and ``state``:
``unsupported_response_type``, ``invalid_request`` (no PKCE challenge, or a method other than
``S256``: RFC 7636 section 4.4.1), ``invalid_scope``.

The page asks for the SSIN and the password. Its form carries a CSRF token that must match a
cookie set with the page (login CSRF). Wrong credentials and unknown SSINs get the same answer.
Repeated wrong passwords for one SSIN slow down the client address that sends them, with growing
delays, never the patient's other addresses (``throttle.py``); each client address also has a
budget of attempts per window (settings ``GATEWAY_LOGIN_*``). The client address is the TCP peer,
or what a trusted proxy says (uvicorn ``--proxy-headers`` / ``FORWARDED_ALLOW_IPS``,
docs/portal.md). On success the browser goes to the redirect URI with a single-use code
(``codes.py``). A patient under 16 is refused after the password check (PO-3): from 12 to 16 his
own access is blocked, under 12 his parents act for him.

A real deployment replaces this page with an OpenID Connect provider (docs/portal.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from fhir_profiles import is_valid_ssin, normalise_ssin
from fhir_profiles.ages import OWN_ACCESS_AGE, REPRESENTED_BELOW_AGE, age_at
from gateway.auth import scopes, tokens
from gateway.auth.accounts import LoginResult
from gateway.auth.codes import CHALLENGE, CHALLENGE_METHOD, CodeGrant
from gateway.auth.state import AUTHORIZE_PATH, AuthState
from gateway.portal import i18n, render
from gateway.portal.i18n import N_
from gateway.portal.security import security_headers
from gateway.portal.session import cookie_is_secure
from gateway.urls import public_base

log = structlog.get_logger("gateway.auth")
router = APIRouter()

CALLBACK_PATH = "/portal/callback"
CSRF_COOKIE = "oauth_login_csrf"
_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "ui_locales",
)
_MAX_VALUE = 512
_MAX_FORM_BYTES = 8 * 1024


def redirect_uris(request: Request) -> tuple[str, ...]:
    """The portal's registered redirect URI (RFC 6749 section 3.1.2: compared exactly)."""
    return (public_base(request) + CALLBACK_PATH,)


class PageError(Exception):
    """Shown on the gateway's page: the client or redirect URI cannot be trusted."""


@dataclass(frozen=True)
class Authorization:
    params: dict[str, str]
    scope: str

    @property
    def redirect_uri(self) -> str:
        return self.params["redirect_uri"]

    def error_redirect(self, error: str, description: str) -> RedirectResponse:
        query = {"error": error, "error_description": description}
        if self.params.get("state"):
            query["state"] = self.params["state"]
        return _redirect(self.redirect_uri + "?" + urlencode(query))


class RedirectError(Exception):
    def __init__(self, authorization: Authorization, error: str, description: str) -> None:
        super().__init__(error)
        self.response = authorization.error_redirect(error, description)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=security_headers())


def _validate(request: Request, values: dict[str, list[str]]) -> Authorization:
    if any(len(v) > 1 for v in values.values()):
        raise PageError("a parameter is repeated")  # RFC 6749 section 3.1
    params = {k: v[0][:_MAX_VALUE] for k, v in values.items() if k in _PARAMS and v}
    if params.get("client_id") != tokens.PORTAL_CLIENT_ID:
        raise PageError("unknown client")
    if params.get("redirect_uri") not in redirect_uris(request):
        raise PageError("redirect_uri is not registered for this client")
    authorization = Authorization(params, "")
    if params.get("response_type") != "code":
        raise RedirectError(authorization, "unsupported_response_type", "only code is supported")
    challenge = params.get("code_challenge")
    if not challenge:
        raise RedirectError(authorization, "invalid_request", "code challenge required")
    if params.get("code_challenge_method") != CHALLENGE_METHOD:
        raise RedirectError(authorization, "invalid_request", "transform algorithm not supported")
    if not CHALLENGE.match(challenge):
        raise RedirectError(authorization, "invalid_request", "code_challenge is malformed")
    try:
        granted = scopes.to_string(scopes.patient_grant(params.get("scope")))
    except scopes.ScopeError:
        raise RedirectError(authorization, "invalid_scope", "scope beyond a patient's") from None
    return Authorization(params, granted)


def _locale(request: Request, params: dict[str, str]) -> str:
    for tag in params.get("ui_locales", "").split():  # OpenID Connect Core 3.1.2.1
        if found := i18n.supported(tag.split("-")[0].lower()):
            return found
    return i18n.supported(request.cookies.get(i18n.LANGUAGE_COOKIE)) or i18n.negotiate(
        request.headers.get("accept-language")
    )


def _page(
    request: Request,
    authorization: Authorization,
    *,
    csrf: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    locale = _locale(request, authorization.params)
    links = [
        (code, AUTHORIZE_PATH + "?" + urlencode({**authorization.params, "ui_locales": code}))
        for code in i18n.LOCALES
    ]
    hidden = {k: v for k, v in authorization.params.items() if k != "ui_locales"}
    hidden["ui_locales"] = locale
    context: dict[str, Any] = {
        "session": None,
        "csrf": csrf,
        "flashes": [],
        "path": AUTHORIZE_PATH,
        "hidden": hidden,
        "error": error,
        "language_links": links,
    }
    response = render.page(locale, "login.html", context, status=status)
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        path=AUTHORIZE_PATH,
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _error_page(request: Request, message: str) -> Response:
    log.info("authorize_refused", reason=message)
    locale = _locale(request, {})
    context: dict[str, Any] = {
        "session": None,
        "csrf": "",
        "flashes": [],
        "path": AUTHORIZE_PATH,
        "status": 400,
        "message": N_("The login request is not valid."),
    }
    return render.page(locale, "error.html", context, status=400)


@router.get(AUTHORIZE_PATH, summary="OAuth 2.0 authorization endpoint (patients' login page)")
async def authorize(request: Request) -> Response:
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, []).append(value)
    try:
        authorization = _validate(request, values)
    except PageError as exc:
        return _error_page(request, str(exc))
    except RedirectError as exc:
        return exc.response
    return _page(request, authorization, csrf=secrets.token_urlsafe(32))


async def _form(request: Request) -> dict[str, list[str]]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise PageError("form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError("the form is not valid") from exc
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def _minor(ssin: str, now: datetime) -> str | None:
    """Why a minor may not log in himself (PO-3), or ``None``: from 16, or an unknown birth date.

    Under 12 the parents act for the child (the family link); from 12 to 16 the patient's
    own access is blocked, as the Walloon network (RSW) does.
    """
    age = age_at(ssin, now)
    if age is None or age >= OWN_ACCESS_AGE:
        return None
    return "minor-represented" if age < REPRESENTED_BELOW_AGE else "minor-blocked"


@router.post(AUTHORIZE_PATH, include_in_schema=False)
async def login(request: Request) -> Response:
    auth: AuthState = request.app.state.auth
    settings = request.app.state.settings
    try:
        values = await _form(request)
        authorization = _validate(request, values)
    except PageError as exc:
        return _error_page(request, str(exc))
    except RedirectError as exc:
        return exc.response
    sent = (values.get("csrf") or [""])[0]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not secrets.compare_digest(sent.encode(), cookie.encode()):
        log.info("authorize_refused", reason="login csrf")
        return _page(
            request, authorization, csrf=secrets.token_urlsafe(32), error="expired", status=403
        )
    csrf = secrets.token_urlsafe(32)
    address = request.client.host if request.client else "unknown"
    window = await request.app.state.kv.incr_window(
        f"login-attempts:{address}", settings.login_attempt_window_seconds
    )
    if window.count > settings.login_attempts_per_address:
        log.info("patient_login", outcome="rate-limited")
        response = _page(request, authorization, csrf=csrf, error="locked", status=429)
        response.headers["Retry-After"] = str(int(window.reset_after) + 1)
        return response
    ssin = normalise_ssin((values.get("ssin") or [""])[0][:32])
    password = (values.get("password") or [""])[0][:256]
    # Known or not, an SSIN is throttled the same way from this address (no oracle, ASVS V2.2.1);
    # while the wait runs the password is not even checked, the right one included.
    wait = await auth.throttle.wait(ssin, address)
    if wait > 0:
        log.info("patient_login", outcome="delayed")
        response = _page(request, authorization, csrf=csrf, error="locked", status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    if is_valid_ssin(ssin):
        result = await auth.accounts.authenticate(ssin, password)
    else:
        result = LoginResult.BAD_CREDENTIALS
    if result is not LoginResult.OK:
        log.info("patient_login", outcome=result.value)
        await auth.throttle.failed(ssin, address)
        return _page(request, authorization, csrf=csrf, error="credentials", status=401)
    await auth.throttle.succeeded(ssin, address)
    # PO-3, checked only once the password is right, so it tells nothing about other accounts.
    if minor := _minor(ssin, request.app.state.clock()):
        log.info("patient_login", outcome=minor)
        return _page(request, authorization, csrf=csrf, error=minor, status=403)
    log.info("patient_login", outcome=result.value)
    code = await auth.grants.issue_code(
        CodeGrant(
            ssin=ssin,
            scope=authorization.scope,
            client_id=tokens.PORTAL_CLIENT_ID,
            redirect_uri=authorization.redirect_uri,
            code_challenge=authorization.params["code_challenge"],
        ),
        settings.authorization_code_ttl_seconds,
    )
    query = {"code": code}
    if authorization.params.get("state"):
        query["state"] = authorization.params["state"]
    response = _redirect(authorization.redirect_uri + "?" + urlencode(query))
    response.delete_cookie(CSRF_COOKIE, path=AUTHORIZE_PATH)
    return response
