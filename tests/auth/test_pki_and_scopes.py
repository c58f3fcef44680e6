"""Unit tests: the development PKI, chain verification, the registry's rules, SMART scopes,
and the settings that guard them."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from gateway.auth import devpki, pki, scopes
from gateway.auth.registry import RegistrationError, check_nihdi, default_qualification
from gateway.cli import new_encryption_key
from gateway.settings import Settings
from tests.fixtures.auth import DevPki, now

# -- PKI ----------------------------------------------------------------------------------------------


def test_init_writes_certificates_and_private_keys_0600(tmp_path: Path) -> None:
    devpki.init_ca(tmp_path)
    for name in ("root-ca.key", "issuing-ca.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    for name in ("root-ca.pem", "issuing-ca.pem"):
        assert b"BEGIN CERTIFICATE" in (tmp_path / name).read_bytes()
    first = (tmp_path / "root-ca.pem").read_bytes()
    devpki.init_ca(tmp_path)  # idempotent without force
    assert (tmp_path / "root-ca.pem").read_bytes() == first
    devpki.init_ca(tmp_path, force=True)
    assert (tmp_path / "root-ca.pem").read_bytes() != first


def test_issued_certificate_carries_the_nihdi_and_verifies(dev_pki: DevPki, tmp_path: Path) -> None:
    cert, key = devpki.issue_client_certificate(
        dev_pki.issuer, common_name="Dr. An Claes", nihdi="19234011004"
    )
    assert pki.nihdi_of(cert) == "19234011004"
    assert pki.common_name(cert) == "Dr. An Claes"
    chain = dev_pki.trust.verify(cert)
    assert chain.not_after <= cert.not_valid_after_utc
    files = devpki.write_client(tmp_path / "out", cert, key, dev_pki.issuer.cert)
    assert stat.S_IMODE(files.key_path.stat().st_mode) == 0o600
    assert devpki.load_private_key(files.key_path).public_key() == key.public_key()


def test_verification_refuses_foreign_expired_and_future_certificates(
    dev_pki: DevPki, foreign_pki: DevPki
) -> None:
    foreign, _ = devpki.issue_client_certificate(foreign_pki.issuer, common_name="X", nihdi=None)
    with pytest.raises(pki.CertificateRefused, match="trusted CA"):
        dev_pki.trust.verify(foreign)
    expired, _ = devpki.issue_client_certificate(
        dev_pki.issuer,
        common_name="X",
        nihdi=None,
        not_before=now() - timedelta(days=10),
        not_after=now() - timedelta(days=1),
    )
    with pytest.raises(pki.CertificateRefused, match="expired"):
        dev_pki.trust.verify(expired)
    future, _ = devpki.issue_client_certificate(
        dev_pki.issuer, common_name="X", nihdi=None, not_before=now() + timedelta(days=1)
    )
    with pytest.raises(pki.CertificateRefused, match="not yet valid"):
        dev_pki.trust.verify(future)


def test_a_cached_chain_still_expires_on_time(dev_pki: DevPki) -> None:
    cert, _ = devpki.issue_client_certificate(
        dev_pki.issuer, common_name="X", nihdi=None, not_after=now() + timedelta(hours=1)
    )
    trust = dev_pki.trust
    trust.verify(cert)
    with pytest.raises(pki.CertificateRefused, match="expired"):
        trust.verify(cert, now=now() + timedelta(hours=2))


def test_the_issuing_ca_is_not_a_trust_anchor(dev_pki: DevPki) -> None:
    cert, _ = devpki.issue_client_certificate(dev_pki.issuer, common_name="X", nihdi=None)
    only_root = pki.TrustStore(dev_pki.trust.roots)  # no intermediates known...
    with pytest.raises(pki.CertificateRefused):
        only_root.verify(cert)
    only_root.verify(cert, [dev_pki.issuer.cert])  # ...unless the client sends them (x5c)


@pytest.mark.parametrize("value", [[], "abc", ["not base64!"], [1], ["QUJD"], ["QUJD"] * 5])
def test_bad_x5c_is_refused(value: object) -> None:
    with pytest.raises(pki.CertificateRefused):
        pki.from_x5c(value)


def test_missing_trust_directory_refuses(tmp_path: Path) -> None:
    with pytest.raises(pki.CertificateRefused, match="no trusted CA"):
        pki.TrustDirectory(tmp_path / "none").get()


# -- registry rules -------------------------------------------------------------------------------------


def test_nihdi_rules_per_role() -> None:
    assert check_nihdi("prescriber", "19234011004") == "19234011004"
    for bad in (None, "19234012004", "1923401100", "19234011"):
        with pytest.raises(RegistrationError):
            check_nihdi("prescriber", bad)
    assert check_nihdi("pharmacist", "06012345") == "06012345"
    for bad in (None, "0601", "06O12345"):
        with pytest.raises(RegistrationError):
            check_nihdi("pharmacist", bad)
    assert check_nihdi("admin", None) is None
    assert check_nihdi("fund", "") is None
    assert default_qualification("prescriber", "19234011004") == "physician (004)"


async def test_registration_checks_certificate_and_nihdi(auth: object, dev_pki: DevPki) -> None:
    registry = auth.app.state.auth.registry  # type: ignore[attr-defined]
    cert, _ = devpki.issue_client_certificate(dev_pki.issuer, common_name="Dr", nihdi="19234011004")
    with pytest.raises(RegistrationError, match="OU=NIHDI"):
        await registry.register(
            role="prescriber", cert_pem=pki.pem(cert), trust=dev_pki.trust, nihdi="12345625004"
        )
    client = await registry.register(
        role="prescriber", cert_pem=pki.pem(cert), trust=dev_pki.trust, nihdi="19234011004"
    )
    assert client.client_id.startswith("prescriber-")
    with pytest.raises(RegistrationError, match="already registered"):
        await registry.register(
            role="prescriber", cert_pem=pki.pem(cert), trust=dev_pki.trust, nihdi="19234011004"
        )
    assert [c.client_id for c in await registry.list()] == [client.client_id]
    assert await registry.revoke(client.client_id)
    assert not await registry.revoke(client.client_id)  # already revoked
    assert (await registry.get(client.client_id)).status == "revoked"


# -- scopes -----------------------------------------------------------------------------------------------


def test_scope_parsing() -> None:
    assert str(scopes.parse("system/MedicationRequest.cruds")) == "system/MedicationRequest.cruds"
    assert str(scopes.parse("system/Patient.read")) == "system/Patient.rs"
    assert str(scopes.parse("system/Claim.write")) == "system/Claim.cud"
    assert str(scopes.parse("system/*.*")) == "system/*.cruds"
    for bad in ("user/Patient.r", "system/Patient.x", "system/Patient.rr", "system/patient.r", ""):
        with pytest.raises(scopes.ScopeError):
            scopes.parse(bad)


def test_grant_within_ceiling() -> None:
    granted = scopes.grant("prescriber", "system/MedicationRequest.r system/MedicationRequest.c")
    assert scopes.to_string(granted) == "system/MedicationRequest.cr"
    assert scopes.to_string(scopes.grant("admin", "system/AuditEvent.rs")) == "system/AuditEvent.rs"
    assert (
        scopes.to_string(scopes.grant("fund", None)) == "system/Claim.rs system/ClaimResponse.crus"
    )
    for role, scope in (
        ("pharmacist", "system/MedicationRequest.c"),
        ("admin", "system/MedicationRequest.c"),
        ("prescriber", "system/*.r"),
        ("prescriber", "system/MedicationRequest.d"),
    ):
        with pytest.raises(scopes.ScopeError):
            scopes.grant(role, scope)
    with pytest.raises(scopes.ScopeError):
        scopes.grant("patient", None)  # no client role "patient" at the token endpoint


def test_covers() -> None:
    held = frozenset({"system/MedicationRequest.crs", "system/*.r"})
    assert scopes.covers(held, scopes.parse("system/MedicationRequest.c"))
    assert scopes.covers(held, scopes.parse("system/Patient.r"))
    assert not scopes.covers(held, scopes.parse("system/Patient.s"))
    assert not scopes.covers(frozenset({"garbage"}), scopes.parse("system/Patient.r"))


# -- settings ------------------------------------------------------------------------------------------


def test_the_insecure_dev_header_is_gone() -> None:
    with pytest.raises(ValidationError, match="INSECURE_DEV_AUTH was removed"):
        Settings(insecure_dev_auth=True)


def test_production_needs_an_https_public_url() -> None:
    key = SecretStr(new_encryption_key())
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL is required"):
        Settings(environment="production", encryption_key=key)
    with pytest.raises(ValidationError, match="https"):
        Settings(environment="production", encryption_key=key, public_base_url="http://gw.example")
    Settings(environment="production", encryption_key=key, public_base_url="https://gw.example")


def test_token_lifetimes_are_bounded() -> None:
    with pytest.raises(ValidationError):
        Settings(access_token_ttl_seconds=901)
    with pytest.raises(ValidationError):
        Settings(assertion_max_lifetime_seconds=301)
