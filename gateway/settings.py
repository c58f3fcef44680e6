"""All configuration, read once from ``GATEWAY_*`` environment variables (pydantic-settings).

``create_app(settings)`` receives an instance, so tests build their own instead of patching globals.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str = "sqlite:///./var/gateway.db"
    redis_url: str | None = None
    # 32 bytes, base64 (standard or url-safe). Encrypts bodies (AES-GCM) and keys the SSIN HMAC, through
    # two HKDF sub-keys. Required: the demo writes one under the data dir; production supplies its own.
    encryption_key: SecretStr | None = None
    # Key rotation at rest (docs/operations.md, "Rotating the encryption key"), instead of the one
    # key above: ``label:key,label:key`` (labels [A-Za-z0-9._-], keys as above); the key labelled
    # GATEWAY_ENCRYPTION_KEY_CURRENT seals new writes, the others only decrypt. The search HMAC key
    # does not rotate (gateway/storage/crypto.py): with several keys it is GATEWAY_SEARCH_KEY,
    # printed from the single key by `gateway keys search-key`.
    encryption_keys: SecretStr | None = None
    encryption_key_current: str | None = None
    search_key: SecretStr | None = None
    public_base_url: str | None = Field(
        default=None,
        description="External base URL (behind a proxy) used in Location and paging links.",
    )
    max_body_bytes: int = 1024 * 1024
    default_page_size: int = 20
    max_page_size: int = 200
    # ID-7: professional NIHDI check digits of either series (modulo 97, or modulo 89 for numbers
    # issued since 2013). The modulo-89 formula is not quoted by NIHDI itself (docs/domain.md, Q2):
    # the switch turns the check off should a real number be refused.
    nihdi_check_digit: bool = True
    # --- OAuth 2.0 (docs/auth.md) ------------------------------------------------------------
    # Issuer of access tokens (``iss``); default: public_base_url, else the request's base URL.
    issuer: str | None = None
    # Where the trusted CA certificates live (root-ca.pem, issuing-ca.pem); default <data_dir>/pki.
    ca_dir: Path | None = None
    # Access-token lifetime; never more than 15 minutes (tokens cannot be recalled).
    access_token_ttl_seconds: int = Field(default=600, ge=30, le=900)
    # RFC 7523 section 3: how far ahead a client assertion's ``exp`` may be (SMART: 5 minutes).
    assertion_max_lifetime_seconds: int = Field(default=300, ge=10, le=300)
    # Requests per client per minute on /fhir (0 disables), and token requests per client per minute.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    token_rate_limit_per_minute: int = Field(default=60, ge=0)
    # How long an instance trusts its in-memory copy of the signing keys and of a client's status.
    signing_key_cache_seconds: int = Field(default=30, ge=0, le=300)
    client_status_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # Removed: the development identity header gave way to bearer tokens. Setting it is an error,
    # so that a deployment that still relies on it fails at start instead of answering 401s.
    insecure_dev_auth: bool = False
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    # --- eAttest claims and the forwarder (docs/claims.md) ------------------------------------
    # Fund code -> base URL: ``100=http://127.0.0.1:9100/funds/100,300=http://...``. A claim goes to
    # its insurer's code, else to its union's (code // 100 * 100, ID-13); with neither it is refused.
    mutuality_urls: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Run the forwarder inside the API process. None (default): on with SQLite (the embedded
    # single-process setup), off with PostgreSQL, where `gateway worker` processes run beside the API.
    worker_in_process: bool | None = None
    # Sends in flight per fund (a slow fund cannot take the slots of the others).
    worker_concurrency: int = Field(default=16, ge=1, le=512)
    # How often an idle worker looks for due claims (an intake in the same process wakes it at once).
    worker_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # Delivery attempts before a claim is parked as failed (operators: `gateway claims retry`).
    claim_max_attempts: int = Field(default=12, ge=1, le=100)
    # Exponential backoff between attempts: initial * 2^(n-1), capped, plus up to `jitter` seconds.
    claim_backoff_initial_seconds: float = Field(default=1.0, gt=0, le=3600)
    claim_backoff_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    claim_backoff_jitter_seconds: float = Field(default=1.0, ge=0, le=3600)
    # One HTTP exchange with a fund, connect to last byte.
    claim_send_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # A worker owns a claimed delivery for this long; a killed worker's job is taken again after it.
    claim_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    # AT-7: a second attestation of the same service within this window needs an explicit override.
    # RX-7 markAsUnDelivered: how long the dispensing pharmacy may undo a dispense. The domain
    # document gives no figure, so the default of 24 h holds [A].
    dispense_undo_window_hours: float = Field(default=24.0, ge=0, le=24 * 366)
    claim_duplicate_window_hours: float = Field(default=24.0, ge=0, le=24 * 366)
    # POST /fhir/$process-message waits this long for the fund's answer before it answers
    # transient-error (resend the same Bundle id); 0 answers at once (docs/claims.md).
    message_wait_seconds: float = Field(default=10.0, ge=0, le=120)
    # Settlement feed: polling interval and page size per fund.
    settlement_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    settlement_page_size: int = Field(default=500, ge=1, le=1000)
    # --- proofs of presence (docs/access.md, "Presence proofs") --------------------------------
    # The national register that says whether an eID card is the patient's current card (CO-2,
    # RX-18 b): ``http://127.0.0.1:9200`` (``python -m national_register``). Unset: only the card
    # number's check digits are checked (the embedded default needs no register).
    national_register_url: str | None = None
    # One question to the register, connect to last byte, no retry: no answer in time refuses the
    # proof (``presence-check-unavailable``) instead of holding the request.
    national_register_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # --- patient login and portal (docs/portal.md) ---------------------------------------------
    # RFC 6749 section 4.1.2: an authorization code lives briefly and is used once.
    authorization_code_ttl_seconds: int = Field(default=60, ge=5, le=600)
    # Brute force on the login page (gateway/auth/throttle.py, ASVS V2.2.1): after this many wrong
    # passwords in a row for one SSIN from one client address, that address (only) waits
    # login_delay_base_seconds, doubling after each further failure up to login_delay_max_seconds;
    # failures are forgotten login_failure_memory_seconds after the last. Login attempts from one
    # client address are also limited per window.
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_delay_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    login_delay_max_seconds: float = Field(default=900.0, gt=0, le=86400)
    login_failure_memory_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    login_attempts_per_address: int = Field(default=50, ge=1, le=100_000)
    login_attempt_window_seconds: int = Field(default=900, ge=1, le=86400)
    # Portal sessions: ended after this long without a request, and this long after login.
    portal_idle_timeout_seconds: int = Field(default=900, ge=10, le=86400)
    portal_session_max_seconds: int = Field(default=3600, ge=60, le=86400)
    # --- limits on slow and many clients, operator surfaces (docs/operations.md) --------------
    # A request body must arrive completely within this long of its first byte being read (408).
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Requests served at once by one process; beyond it 503 + Retry-After (health checks exempt).
    max_in_flight: int = Field(default=64, ge=1, le=10_000)
    # The bytes of a request line plus its headers (beyond: 431; a header block still arriving
    # is cut by the server at the same figure, 400).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # `gateway serve` only (uvicorn): open connections per process (beyond: uvicorn's own 503)
    # and how long an idle keep-alive connection is kept.
    max_connections: int = Field(default=256, ge=1, le=100_000)
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    # serve: after SIGTERM, refuse new connections and serve the open ones this long, then stop
    # (gateway.drain.DrainingServer); 0 stops at once. Above the proxy's upstream keep-alive.
    drain_seconds: float = Field(default=0.0, ge=0, le=120)
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed (the proxy's; CIDR ranges
    # allowed). Unset: uvicorn's FORWARDED_ALLOW_IPS, else 127.0.0.1.
    forwarded_allow_ips: str | None = None
    # /docs, /redoc and /openapi.json: None (default) = on in development, off in production.
    api_docs: bool | None = None
    # /metrics: None (default) = open in development; in production an operator's (role admin)
    # bearer token is required. True opens it (e.g. when the proxy already hides it).
    metrics_public: bool | None = None
    # --- audit (docs/access.md, "The chain") ---------------------------------------------------
    # Group commit: a request's events are chained by the process's audit writer in one batch with
    # others' (gateway/audit/group.py), gathered for this long; false chains them in the request's
    # own transaction, each request holding the chain's lock until it commits. None (default): on
    # with PostgreSQL; off with SQLite, whose one writer at a time leaves no lock to spare.
    audit_group_commit: bool | None = None
    audit_batch_ms: float = Field(default=2.0, ge=0, le=100)

    @field_validator("encryption_key", "search_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_key_set(self) -> Settings:
        # Checked on the secret's value here, after validation: an error names no key.
        keys = self.key_labels()
        current = self.encryption_key_current
        if keys and self.encryption_key is not None:
            raise ValueError(
                "set GATEWAY_ENCRYPTION_KEY or GATEWAY_ENCRYPTION_KEYS, not both "
                "(list the single key in GATEWAY_ENCRYPTION_KEYS under a label)"
            )
        if current is not None and current not in keys:
            raise ValueError(
                "GATEWAY_ENCRYPTION_KEY_CURRENT names no key of GATEWAY_ENCRYPTION_KEYS"
            )
        if len(keys) > 1 and current is None:
            raise ValueError("GATEWAY_ENCRYPTION_KEY_CURRENT is required with several keys")
        if len(keys) > 1 and self.search_key is None:
            raise ValueError(
                "GATEWAY_SEARCH_KEY is required with several encryption keys: print it with "
                "`gateway keys search-key` while the first key is still the only one"
            )
        return self

    @field_validator("mutuality_urls", mode="before")
    @classmethod
    def _parse_mutuality_urls(cls, value: Any) -> Any:
        return parse_mutuality_urls(value) if isinstance(value, str) else value

    @field_validator("mutuality_urls")
    @classmethod
    def _check_mutuality_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for code, url in value.items():
            if not (len(code) == 3 and code.isascii() and code.isdigit()):
                raise ValueError(f"GATEWAY_MUTUALITY_URLS: {code!r} is not a 3-digit fund code")
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ValueError(f"GATEWAY_MUTUALITY_URLS: the URL of fund {code} is not http(s)")
        return {code: url.rstrip("/") for code, url in value.items()}

    @field_validator("national_register_url")
    @classmethod
    def _check_national_register_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("GATEWAY_NATIONAL_REGISTER_URL is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> Settings:
        # A lease shorter than one exchange would let a second worker take a job still in flight.
        if self.claim_lease_seconds <= self.claim_send_timeout_seconds:
            raise ValueError(
                "GATEWAY_CLAIM_LEASE_SECONDS must exceed GATEWAY_CLAIM_SEND_TIMEOUT_SECONDS"
            )
        return self

    def api_docs_enabled(self) -> bool:
        """/docs, /redoc, /openapi.json: as configured, else only outside production."""
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    def metrics_open(self) -> bool:
        """/metrics without a token: as configured, else only outside production."""
        if self.metrics_public is not None:
            return self.metrics_public
        return self.environment != "production"

    def audit_group_commits(self) -> bool:
        """Group commit of the audit chain: as configured, else with PostgreSQL only."""
        if self.audit_group_commit is not None:
            return self.audit_group_commit
        return not self.database_url.startswith("sqlite")

    def worker_runs_in_process(self) -> bool:
        """The in-process forwarder: as configured, else only on SQLite (the embedded default)."""
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _no_dev_auth(self) -> Settings:
        if self.insecure_dev_auth:
            raise ValueError(
                "GATEWAY_INSECURE_DEV_AUTH was removed: clients authenticate with OAuth 2.0 "
                "(private_key_jwt); for development use `gateway token --client-id ...`"
            )
        return self

    @model_validator(mode="after")
    def _production_urls(self) -> Settings:
        # Token issuer and audiences must not depend on a request's Host header in production,
        # and tokens travel over TLS only (RFC 6749 section 1.6, RFC 6750 section 5.3).
        if self.environment == "production":
            if not self.public_base_url:
                raise ValueError("GATEWAY_PUBLIC_BASE_URL is required in production")
            if not _is_https_or_loopback(self.public_base_url):
                raise ValueError("GATEWAY_PUBLIC_BASE_URL must be https in production")
        return self

    def trust_dir(self) -> Path:
        """The directory holding the trusted CA certificates (``certs_dev/README.md``)."""
        return self.ca_dir if self.ca_dir is not None else self.data_dir / "pki"

    def key_bytes(self) -> bytes:
        """The current encryption key (the one new writes are sealed with)."""
        keys, current = self.encryption_key_set()
        return keys[current]

    def encryption_key_set(self) -> tuple[dict[str, bytes], str]:
        """Every configured encryption key by label, and the current one's label (a single
        GATEWAY_ENCRYPTION_KEY is labelled ``default``)."""
        if self.encryption_keys is not None:
            keys = parse_encryption_keys(self.encryption_keys.get_secret_value())
            return keys, self.encryption_key_current or next(iter(keys))
        if self.encryption_key is None:
            raise RuntimeError(
                "GATEWAY_ENCRYPTION_KEY is not set: generate one with `gateway keys new-encryption-key`"
            )
        return {"default": decode_key(self.encryption_key.get_secret_value())}, "default"

    def key_labels(self) -> list[str]:
        """The labels of GATEWAY_ENCRYPTION_KEYS (none with a single GATEWAY_ENCRYPTION_KEY)."""
        if self.encryption_keys is None:
            return []
        return list(parse_encryption_keys(self.encryption_keys.get_secret_value()))

    def search_key_bytes(self) -> bytes | None:
        """GATEWAY_SEARCH_KEY, or None: derived from the single encryption key."""
        return None if self.search_key is None else decode_key(self.search_key.get_secret_value())


def _is_https_or_loopback(url: str) -> bool:
    parsed = urlsplit(url)
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and parsed.hostname in ("localhost", "127.0.0.1", "::1")


def parse_mutuality_urls(text: str) -> dict[str, str]:
    """``100=http://a/funds/100,300=http://b/funds/300`` -> ``{"100": ..., "300": ...}``."""
    urls: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        code, sep, url = part.partition("=")
        if not sep or not url.strip():
            raise ValueError("GATEWAY_MUTUALITY_URLS: expected code=url[,code=url...]")
        urls[code.strip()] = url.strip()
    return urls


def parse_encryption_keys(text: str) -> dict[str, bytes]:
    """``old:<base64>,new:<base64>`` -> ``{"old": <32 bytes>, "new": ...}``."""
    keys: dict[str, bytes] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        label, sep, key = (piece.strip() for piece in part.partition(":"))
        if not sep or not _LABEL.fullmatch(label):
            raise ValueError("GATEWAY_ENCRYPTION_KEYS: expected label:key[,label:key...]")
        if label in keys:
            raise ValueError(f"GATEWAY_ENCRYPTION_KEYS: the label {label} is given twice")
        keys[label] = decode_key(key)
    if not keys:
        raise ValueError("GATEWAY_ENCRYPTION_KEYS: no key given")
    return keys


_LABEL = re.compile(r"[A-Za-z0-9._-]{1,32}")


def decode_key(text: str) -> bytes:
    """Decode a base64 (standard or url-safe, padding optional) 32-byte key."""
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("encryption key is not valid base64") from exc
    if len(raw) != 32:
        raise ValueError("encryption key must decode to 32 bytes")
    return raw
