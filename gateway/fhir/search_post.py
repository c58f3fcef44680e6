"""``POST [type]/_search`` (FHIR R4 http.html#search): the parameters travel in a form-encoded body,
so a patient's SSIN stays out of URLs, proxies' access logs and browser histories.

A plain ASGI middleware runs the POST as the ``GET [type]?...`` it stands for (URL parameters and
body parameters together, as the spec allows), so every searchable type gets it with the same
results, decision and audit as a GET. The paging links of such a search carry the parameters
sealed (``_query``: encrypted and authenticated with the gateway's key, opaque to whoever sees the
URL) instead of in clear; a ``GET [type]?_query=...`` opens them again. Any type's search can be
asked this way; a type without a search answers as its GET does (404/405).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidTag
from fastapi.responses import Response
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_profiles.issues import Issue
from gateway.fhir.headers import run_rewritten
from gateway.fhir.outcomes import outcome_response
from gateway.storage.crypto import Keyring

SEALED: Final = "_query"
FORM: Final = "application/x-www-form-urlencoded"
_SEARCH_PATH: Final = re.compile(r"/fhir/(?P<type>[A-Z][A-Za-z]{1,63})/_search/?")
_TYPE_PATH: Final = re.compile(r"/fhir/(?P<type>[A-Z][A-Za-z]{1,63})/?")
_STATE_KEY: Final = "sealed_search"
_BODY_HEADERS: Final = frozenset({b"content-type", b"content-length", b"transfer-encoding"})


def _associated(resource_type: str) -> bytes:
    return f"search-query/{resource_type}".encode()


def seal(keyring: Keyring, resource_type: str, params: list[tuple[str, str]]) -> str:
    blob = keyring.encrypt(urlencode(params).encode(), _associated(resource_type))
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def _unseal(keyring: Keyring, resource_type: str, token: str) -> bytes | None:
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return keyring.decrypt(blob, _associated(resource_type))
    except (ValueError, InvalidTag):
        return None


def sealed_links(request: Request) -> bool:
    """Whether this search's paging links must carry its parameters sealed."""
    return bool(request.scope.get("state", {}).get(_STATE_KEY))


def _refusal(status: int, message: str, expression: str = "") -> Response:
    code = "not-supported" if status == 415 else "invalid"
    return outcome_response(status, [Issue(code=code, expression=expression, diagnostics=message)])


class SearchByPost:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            match = _SEARCH_PATH.fullmatch(scope["path"])
            if match is not None:
                await self._post(scope, receive, send, match["type"])
                return
        elif scope["method"] in ("GET", "HEAD") and b"_query=" in scope.get("query_string", b""):
            match = _TYPE_PATH.fullmatch(scope["path"])
            if match is not None:
                await self._sealed(scope, receive, send, match["type"])
                return
        await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send, resource_type: str) -> None:
        request = Request(scope, receive)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != FORM:
            refusal = _refusal(415, f"POST {resource_type}/_search takes a {FORM} body")
            await refusal(scope, receive, send)
            return
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body_bytes:
                refusal = _refusal(413, f"body exceeds the limit of {self.max_body_bytes} bytes")
                await refusal(scope, receive, send)
                return
        try:
            params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            await _refusal(400, "the search body is not form-encoded parameters")(
                scope, receive, send
            )
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        await self._as_get(scope, send, resource_type, [*query, *params])

    async def _sealed(self, scope: Scope, receive: Receive, send: Send, resource_type: str) -> None:
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        tokens = [value for name, value in query if name == SEALED]
        keyring: Keyring = scope["app"].state.keyring
        opened = _unseal(keyring, resource_type, tokens[0]) if len(tokens) == 1 else None
        if opened is None:
            await _refusal(400, "_query is not a link this server gave", SEALED)(
                scope, receive, send
            )
            return
        rest = [(name, value) for name, value in query if name != SEALED]
        params = parse_qsl(opened.decode(), keep_blank_values=True)
        await self._as_get(scope, send, resource_type, [*params, *rest], method=scope["method"])

    async def _as_get(
        self,
        scope: Scope,
        send: Send,
        resource_type: str,
        params: list[tuple[str, str]],
        *,
        method: str = "GET",
    ) -> None:
        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        path = f"/fhir/{resource_type}"
        rewritten = await run_rewritten(
            self.app,
            scope,
            no_body,
            send,
            method=method,
            path=path,
            raw_path=path.encode(),
            query_string=urlencode(params).encode(),
            headers=[(k, v) for k, v in scope["headers"] if k not in _BODY_HEADERS],
            state={**scope.get("state", {}), _STATE_KEY: True},
        )
        if scope["path"] != path and "route" in rewritten:  # the log names POST [type]/_search
            scope["route"] = _Route(f"{path}/_search")


@dataclass(frozen=True)
class _Route:
    """What the access log and the metrics read of a matched route (``gateway.ops``)."""

    path: str
