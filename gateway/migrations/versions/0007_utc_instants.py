"""Instants derived from bodies, recomputed as UTC instants (docs/architecture.md, section 10).

Until now SQLite stored an aware datetime's wall-clock time without its zone, and the gateway read
it back as UTC: ``2026-12-02T16:41:40+01:00`` counted from 16:41:40 UTC, an hour late, and every
validity end (Brussels midnight) one or two hours late. The columns are now ``UtcDateTime``
(``gateway.storage.types``). This migration recomputes, on SQLite, the columns taken from a body's
times, for every version, from the stored body, with the functions the write path uses:

- MedicationRequest: ``authored_on``, ``period_start``, ``period_end``
  (``gateway.prescriptions.timing.instants_of``, RX-7, RX-10..RX-12);
- Consent: ``period_start``, ``period_end`` (``gateway.consents.service.period_of``, CO-4, CO-7);
- MedicationDispense: ``authored_on``, its ``whenHandedOver`` (RX-25).

The gateway's own times (creation, update, audit, claims, accounts) were UTC already. PostgreSQL's
``timestamptz`` always held the right instants: nothing to do there.

Bodies are encrypted: the keyring is the one ``gateway.migrate.upgrade`` was given, else the key in
``GATEWAY_ENCRYPTION_KEY``. A database without such rows needs no key; one with rows and no key (or
another key) stops here, changing nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final

import orjson
import sqlalchemy as sa
from alembic import context, op

from fhir_profiles._json import text
from fhir_profiles.dates import parse_fhir_datetime
from gateway.consents.service import period_of
from gateway.migrate import KEYRING
from gateway.prescriptions.timing import instants_of
from gateway.settings import Settings
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.types import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPES: Final = ("MedicationRequest", "Consent", "MedicationDispense")
_BATCH: Final = 500

# The columns as they are at this revision (not the application's table, which may change later).
_rv = sa.table(
    "resource_versions",
    sa.column("resource_type", sa.String),
    sa.column("logical_id", sa.String),
    sa.column("version_id", sa.Integer),
    sa.column("key_id", sa.String),
    sa.column("body", sa.LargeBinary),
    sa.column("authored_on", UtcDateTime()),
    sa.column("period_start", UtcDateTime()),
    sa.column("period_end", UtcDateTime()),
)

NO_KEY: Final = (
    "migration 0007 recomputes search columns from the encrypted bodies and needs their key: "
    "set GATEWAY_ENCRYPTION_KEY (or pass keyring= to gateway.migrate.upgrade)"
)


def _times(resource_type: str, body: dict[str, Any]) -> dict[str, datetime | None]:
    """The columns this migration owns for one body, as the write path computes them."""
    if resource_type == "MedicationRequest":
        instants = instants_of(body)
        return {
            "authored_on": instants.authored_on,
            "period_start": instants.valid_from,
            "period_end": instants.expires_at,
        }
    if resource_type == "Consent":
        start, end = period_of(body)
        return {"period_start": start, "period_end": end}
    handed_over = text(body.get("whenHandedOver"))
    return {"authored_on": None if handed_over is None else parse_fhir_datetime(handed_over)}


def _keyring() -> Keyring:
    given = context.config.attributes.get(KEYRING)
    if isinstance(given, Keyring):
        return given
    try:
        return Keyring(Settings().key_bytes())
    except (RuntimeError, ValueError) as exc:  # no key, or a malformed one
        raise RuntimeError(NO_KEY) from exc


def _rows(connection: sa.Connection) -> Iterator[sa.Row[Any]]:
    """The rows to recompute, in primary-key batches (bodies are not all held in memory)."""
    after: tuple[str, str, int] = ("", "", 0)
    key = sa.tuple_(_rv.c.resource_type, _rv.c.logical_id, _rv.c.version_id)
    while True:
        batch = connection.execute(
            sa.select(_rv)
            .where(_rv.c.resource_type.in_(_TYPES), key > sa.tuple_(*map(sa.literal, after)))
            .order_by(_rv.c.resource_type, _rv.c.logical_id, _rv.c.version_id)
            .limit(_BATCH)
        ).all()
        yield from batch
        if len(batch) < _BATCH:
            return
        last = batch[-1]
        after = (last.resource_type, last.logical_id, last.version_id)


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return  # timestamptz kept the instants
    count = connection.scalar(
        sa.select(sa.func.count()).select_from(_rv).where(_rv.c.resource_type.in_(_TYPES))
    )
    if not count:
        return
    keyring = _keyring()
    for row in _rows(connection):
        if row.key_id != keyring.key_id:
            raise RuntimeError(
                "migration 0007: a body is encrypted under another key than "
                "GATEWAY_ENCRYPTION_KEY's; nothing was changed"
            )
        plain = keyring.decrypt(
            row.body, associated_data(row.resource_type, row.logical_id, row.version_id)
        )
        values = {k: v for k, v in _times(row.resource_type, orjson.loads(plain)).items() if v}
        if values:  # a time the body no longer yields keeps its column as it was
            connection.execute(
                sa.update(_rv)
                .where(
                    _rv.c.resource_type == row.resource_type,
                    _rv.c.logical_id == row.logical_id,
                    _rv.c.version_id == row.version_id,
                )
                .values(**values)
            )


def downgrade() -> None:
    # The columns hold UTC instants, which the code before 0007 read as UTC: nothing to undo.
    pass
