"""``_pretty=true`` (FHIR R4 http.html#parameters): any FHIR JSON answer under ``/fhir``, indented.

A plain ASGI middleware, so that reads, searches, history, the CapabilityStatement and errors
are all indented the same way without any route knowing. The body is re-indented token by token,
never parsed into numbers and written back: a decimal keeps its digits (FHIR R4 json.html:
decimals keep their precision). ``check_accept`` (``gateway.fhir.negotiation``) refuses a value
other than true or false with 400.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.fhir.headers import under_fhir

# A JSON string (escapes included), a structural character, or a literal (number, true, null).
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+', re.DOTALL)
_OPENING = {b"{": b"}", b"[": b"]"}
_INDENT = b"  "


def indent(body: bytes) -> bytes:
    """``body``, a JSON text, indented by two spaces a level, one member or item a line."""
    out: list[bytes] = []
    depth = 0
    tokens = _TOKEN.findall(body)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        closing = _OPENING.get(token)
        if closing is not None:
            if i + 1 < len(tokens) and tokens[i + 1] == closing:
                out.append(token + closing)  # empty: stays on its line
                i += 2
                continue
            depth += 1
            out.append(token + b"\n" + _INDENT * depth)
        elif token in (b"}", b"]"):
            depth -= 1
            out.append(b"\n" + _INDENT * depth + token)
        elif token == b",":
            out.append(b",\n" + _INDENT * depth)
        elif token == b":":
            out.append(b": ")
        else:
            out.append(token)
        i += 1
    return b"".join(out) + b"\n"


def _wants_pretty(query_string: bytes) -> bool:
    if b"_pretty" not in query_string:
        return False
    values = [v for k, v in parse_qsl(query_string.decode("latin-1")) if k == "_pretty"]
    return [v.lower() for v in values] == ["true"]


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media in (b"application/fhir+json", b"application/json")
    return False


class PrettyJson:
    """Indents the JSON answer of a ``/fhir`` request that asks ``_pretty=true``; the
    ``Content-Length`` follows. Everything else passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not under_fhir(scope.get("path", ""))
            or not _wants_pretty(scope.get("query_string", b""))
        ):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_indented(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # held until the whole body is known
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            if body and _is_json(headers):
                body = indent(body)
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_indented)
