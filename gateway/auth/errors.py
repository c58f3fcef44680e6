"""Resource-server refusals (RFC 6750 section 3) as ``GatewayError``s, so that FHIR callers get an
OperationOutcome with the ``WWW-Authenticate`` challenge. The token endpoint does not use these:
it answers with authlib's RFC 6749 errors (docs/architecture.md 4)."""

from __future__ import annotations

from gateway.errors import Forbidden, GatewayError, Unauthorized

REALM = "fhir"


def challenge(error: str | None = None, description: str | None = None, scope: str = "") -> str:
    """A ``Bearer`` challenge (RFC 6750 section 3); values never contain a quote."""
    params = [f'realm="{REALM}"']
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{description}"')
    if scope:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


class InvalidToken(Unauthorized):
    """401: no token (RFC 6750 section 3.1: no error code then), or one that is malformed,
    expired, revoked or not ours (``invalid_token``)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        if missing:
            self.headers["WWW-Authenticate"] = challenge()
        else:
            self.headers["WWW-Authenticate"] = challenge("invalid_token", message)


class InsufficientScope(Forbidden):
    """403: the token is valid but lacks a scope the interaction needs (RFC 6750 section 3.1)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"insufficient-scope: this interaction needs {scope}")
        self.headers["WWW-Authenticate"] = challenge(
            "insufficient_scope", "the access token lacks a required scope", scope
        )


class TooManyRequests(GatewayError):
    """429 with ``Retry-After`` (RFC 6585 section 4): the client's rate limit is spent."""

    status, code = 429, "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limit exceeded for this client; retry later")
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)
