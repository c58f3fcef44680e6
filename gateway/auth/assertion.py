"""``private_key_jwt``: client authentication with a signed JWT (RFC 7523 sections 2.2 and 3).

A client proves who it is with a JWT signed by the key of its certificate:

* signed with RS256, PS256 or ES256; ``none`` and HMAC algorithms are refused before anything
  else (an HS256 "signature" keyed with the public key is the classic confusion attack);
* ``iss`` = ``sub`` = the client id (RFC 7523 section 3 items 1-2);
* ``aud`` = the token endpoint URL, as a string or in a list (item 3);
* ``exp`` present, not past, and at most ``assertion_max_lifetime_seconds`` (5 min) ahead
  (item 4; SMART Backend Services caps it at five minutes);
* ``jti`` present; that it is used only once is checked after this synchronous part, in the
  key-value store (item 7; ``server.py``);
* the certificate in the ``x5c`` header, or else the registered one, chains to the trusted CA
  and is within its validity (``pki.TrustStore``), and is the registered certificate or a
  renewal of it (same public key, same NIHDI number).

An ``x5c`` header makes the JWS header larger than joserfc's default limit (512 bytes), so
assertions are parsed with a registry whose header limit is raised to a bounded 8 KiB
(docs/architecture.md section 4c), enough for a leaf and an intermediate.

Clock skew of ``CLOCK_SKEW_SECONDS`` is allowed on ``exp``, ``nbf`` and ``iat``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from gateway.auth import pki
from gateway.auth.registry import AUTH_METHOD, RegisteredClient
from gateway.auth.requests import TokenRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
MAX_ASSERTION_HEADER_BYTES = 8 * 1024
CLOCK_SKEW_SECONDS = 30
_MAX_JTI_LENGTH = 256


class AssertionRegistry(JWSRegistry):
    """joserfc's JWS registry with room for an ``x5c`` header (docs/architecture.md section 4c),
    and only the asymmetric algorithms we accept."""

    max_header_length = MAX_ASSERTION_HEADER_BYTES


ASSERTION_REGISTRY = AssertionRegistry(algorithms=list(ASSERTION_ALGORITHMS))


def _refuse(description: str) -> InvalidClientError:
    # RFC 6749 section 5.2: error_description is restricted ASCII; never echo client input raw.
    bad = set(invalid_error_characters(description))
    clean = "".join(ch for ch in description if ch not in bad)
    return InvalidClientError(description=clean)


def public_key_of(cert: x509.Certificate) -> ECKey | RSAKey:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECKey(key, key)
    if isinstance(key, rsa.RSAPublicKey):
        return RSAKey(key, key)
    raise pki.CertificateRefused("certificate key must be EC P-256 or RSA")


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]  # authlib is untyped
    """authlib's RFC 7523 client assertion with the gateway's certificate checks."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self, trust: pki.TrustDirectory, *, max_lifetime: int) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_SKEW_SECONDS)
        self.trust = trust
        self.max_lifetime = max_lifetime

    def __call__(self, query_client: Any, request: TokenRequest) -> RegisteredClient | None:
        data = request.form
        assertion = data.get("client_assertion")
        if data.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None  # authlib answers invalid_client: no usable authentication
        headers, claims = self.extract_assertion(assertion)
        if headers.get("alg") not in ASSERTION_ALGORITHMS:
            raise _refuse("assertion must be signed with RS256, PS256 or ES256")
        subject = claims.get("sub")
        if not isinstance(subject, str):
            raise _refuse("assertion lacks a sub claim")
        client = request.registered
        if client is None or client.client_id != subject:
            raise _refuse("unknown client")
        if not client.active:
            raise _refuse("client has been revoked")
        if data.get("client_id", subject) != subject:
            raise _refuse("client_id does not match the assertion")  # RFC 7521 section 4.2
        try:
            leaf, presented = self._certificate(headers, client)
            chain = self.trust.get().verify(leaf, presented)
            key = public_key_of(leaf)
        except pki.CertificateRefused as exc:
            raise _refuse(str(exc)) from exc
        request.assertion_claims = self._verify(assertion, key, client.client_id, request)
        request.chain = chain
        request.client = client
        return self.authenticate_client(client)  # type: ignore[no-any-return]

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and (unverified) claims, parsed with the raised header limit."""
        try:
            obj = jws.extract_compact(assertion.encode("ascii"), registry=ASSERTION_REGISTRY)
            claims = json.loads(obj.payload or b"")
        except (JoseError, ValueError, UnicodeEncodeError) as exc:
            raise _refuse("client_assertion is not a compact JWS") from exc
        if not isinstance(claims, dict):
            raise _refuse("client_assertion payload is not a JSON object")
        return obj.headers(), claims

    def _certificate(
        self, headers: dict[str, Any], client: RegisteredClient
    ) -> tuple[x509.Certificate, Sequence[x509.Certificate]]:
        if "x5c" not in headers:
            return client.certificate, ()
        certs = pki.from_x5c(headers["x5c"])
        leaf = certs[0]
        if pki.thumbprint(leaf) != client.cert_sha256 and (
            pki.spki_thumbprint(leaf) != client.spki_sha256 or pki.nihdi_of(leaf) != client.nihdi
        ):
            raise pki.CertificateRefused("x5c certificate is not the one registered for the client")
        return leaf, certs[1:]

    def _verify(
        self, assertion: str, key: ECKey | RSAKey, client_id: str, request: TokenRequest
    ) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, key, registry=ASSERTION_REGISTRY)
        except BadSignatureError as exc:
            raise _refuse("assertion signature is invalid") from exc
        except UnsupportedAlgorithmError as exc:
            raise _refuse("assertion must be signed with RS256, PS256 or ES256") from exc
        except JoseError as exc:
            # e.g. ES256 over an RSA certificate: the key cannot make this algorithm's signature
            raise _refuse("assertion is not signed with the certificate key") from exc
        claims: dict[str, Any] = token.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "value": request.token_url},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise _refuse("assertion has expired") from exc
        except MissingClaimError as exc:
            raise _refuse(f"assertion lacks claim {exc.claim}") from exc
        except ClaimError as exc:
            raise _refuse(f"assertion claim {exc.claim} is not valid here") from exc
        if claims["exp"] > time.time() + self.max_lifetime + self.leeway:
            raise _refuse(f"assertion exp is more than {self.max_lifetime} seconds ahead")
        if len(claims["jti"]) > _MAX_JTI_LENGTH:
            raise _refuse("assertion jti is too long")
        return claims


# -- the client side (``gateway token``, tests, benchmarks) ---------------------------------------


def signing_key_of(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> ECKey | RSAKey:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return ECKey(private_key, private_key)
    return RSAKey(private_key, private_key)


def sign_assertion(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    client_id: str,
    token_url: str,
    certificates: Sequence[x509.Certificate] = (),
    alg: str | None = None,
    lifetime: int = 60,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A client assertion as a client sends it: ``x5c`` when ``certificates`` are given."""
    now = int(time.time())
    alg = alg or ("ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "PS256")
    payload: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(24),
        **(claims or {}),
    }
    protected: dict[str, Any] = {"alg": alg, "typ": "JWT", **(header or {})}
    if certificates:
        protected["x5c"] = pki.to_x5c(certificates)
    return jwt.encode(
        protected,
        payload,
        signing_key_of(private_key),
        algorithms=[alg],
        registry=ASSERTION_REGISTRY,
    )
