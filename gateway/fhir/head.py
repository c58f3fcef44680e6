"""``HEAD`` wherever ``GET`` works under ``/fhir`` (FHIR R4 http.html "HEAD": anywhere a GET can
be used, a HEAD is allowed; RFC 9110 9.3.2: the same status and headers, no body).

A plain ASGI middleware runs the request as the ``GET`` it stands for, so authentication, the
access decision and the audit all happen (a HEAD read is a read), then drops the body; the headers,
``Content-Length`` included, are the GET's. Paths outside ``/fhir`` are left as they are.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.fhir.headers import run_rewritten, under_fhir


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not under_fhir(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # The server keeps its own scope saying HEAD, and sends no body for it either.
        await run_rewritten(self.app, scope, receive, send_without_body, method="GET")
