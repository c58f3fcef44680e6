"""The one family of errors the gateway raises; ``gateway.fhir.outcomes`` renders them.

Messages are for the client developer: what is wrong and where, never a health value or an SSIN.
"""

from __future__ import annotations

from typing import ClassVar

from fhir_profiles.issues import Issue


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"  # FHIR issue-type code

    def __init__(self, message: str, *, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.headers: dict[str, str] = {}

    def issues(self) -> list[Issue]:
        return [Issue(code=self.code, expression=self.expression or "", diagnostics=self.message)]


class ManyIssues(GatewayError):
    """An error that carries one issue per element at fault; the message only counts them."""

    counted: ClassVar[str] = "issue(s)"

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(f"{len(issues)} {self.counted}")
        self._issues = issues

    def issues(self) -> list[Issue]:
        return list(self._issues)


class BadRequest(GatewayError):
    """Not JSON, wrong resourceType, unsupported search parameter (FHIR REST: 400)."""

    status, code = 400, "invalid"


class MalformedParameters(ManyIssues, BadRequest):
    """An operation's ``Parameters`` body that is not FHIR: one issue per element at fault (400)."""

    counted = "malformed parameter element(s)"


class Unauthorized(GatewayError):
    status, code = 401, "login"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers["WWW-Authenticate"] = 'Bearer realm="fhir"'


class Forbidden(GatewayError):
    """Authenticated but not allowed; the message is a reason code, never health data."""

    status, code = 403, "forbidden"


class NotFound(GatewayError):
    status, code = 404, "not-found"


class Gone(GatewayError):
    status, code = 410, "deleted"


class MethodNotAllowed(GatewayError):
    status, code = 405, "not-supported"


class NotAcceptable(GatewayError):
    status, code = 406, "not-supported"


class Conflict(GatewayError):
    status, code = 409, "conflict"


class PreconditionFailed(GatewayError):
    """A conditional request whose condition does not hold (If-Match, If-None-Exist with many matches)."""

    status, code = 412, "conflict"


class PayloadTooLarge(GatewayError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(GatewayError):
    status, code = 415, "not-supported"


class ClientClosedRequest(GatewayError):
    """The client went away before its request was read: nginx's 499, so that logs and metrics
    count it apart from the gateway's errors. The answer reaches no one (the server drops it)."""

    status, code = 499, "incomplete"


class ProfileViolation(ManyIssues):
    """The resource parsed but breaks the Belgian profile: one issue per violated rule (422)."""

    status, code = 422, "processing"
    counted = "profile violation(s)"
