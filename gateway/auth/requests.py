"""authlib's request model for a token request received by FastAPI (authlib has no FastAPI glue).

The token request is read in full (a bounded urlencoded body) before authlib sees it, and the
asynchronous look-ups authlib cannot await (the client record, the signing key) are attached to
the request beforehand, so authlib's grant and client-authentication code runs synchronously.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request

if TYPE_CHECKING:
    from gateway.auth.pki import VerifiedChain
    from gateway.auth.registry import RegisteredClient
    from gateway.auth.scopes import Scope
    from gateway.auth.tokens import SigningKey


class FormPayload(OAuth2Payload):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, datalist: dict[str, list[str]]) -> None:
        self._datalist = defaultdict(list, datalist)
        self._data = {name: values[0] for name, values in datalist.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class TokenRequest(OAuth2Request):  # type: ignore[misc]  # authlib is untyped
    """A token request, plus what the gateway looked up for it before authlib runs.

    authlib's constructor refuses ``http://`` URLs (``InsecureTransportError``). TLS ends at the
    proxy in front of the gateway, so the URL the application sees says nothing about the
    transport; production settings require an https public URL instead (``Settings``). The
    attributes are therefore set here, as ``OAuth2Request.__init__`` would set them.
    """

    def __init__(
        self, method: str, uri: str, headers: dict[str, str], datalist: dict[str, list[str]]
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = FormPayload(datalist)
        self.client: RegisteredClient | None = None
        self.auth_method: str | None = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        # -- gateway additions --------------------------------------------------------------
        self.token_url = ""  # the "aud" a client assertion must carry (RFC 7523 section 3)
        self.issuer = ""
        self.audience = ""  # the "aud" of the access token: the FHIR base URL
        self.registered: RegisteredClient | None = None  # looked up by the assertion's "sub"
        self.assertion_claims: dict[str, Any] = {}
        self.chain: VerifiedChain | None = None
        self.granted: tuple[Scope, ...] = ()
        self.signing_key: SigningKey | None = None
        self.access_token_ttl = 0

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data
