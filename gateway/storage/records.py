"""The values that go in and out of ``ResourceStore``: search columns, stored versions, criteria,
paging. ``gateway.storage.store`` re-exports them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from consent import PrescriptionState, SearchFilter
from fhir_profiles.ids import FHIR_ID
from fhir_profiles.issues import Issue
from gateway.errors import BadRequest
from gateway.storage.persons import ProviderMatch


@dataclass(frozen=True)
class SearchColumns:
    """What a resource exposes to search; the store hashes the sensitive parts.

    ``period_*``, ``category``, ``actor_nihdi``, ``kind`` and the visibility columns are what the
    access decision reads without decrypting a body (docs/architecture.md 4c, 5; migration 0003).
    """

    patient_ssin: str | None = None
    status: str | None = None
    authored_on: datetime | None = None
    author_nihdi: str | None = None
    identifiers: Sequence[tuple[str, str]] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None  # prescription: end of validity (exclusive instant)
    category: str | None = None
    actor_nihdi: str | None = None
    kind: str | None = None
    pharmacy_visibility: str | None = None
    visible_pharmacy: str | None = None
    prescriber_visibility: str | None = None
    # migration 0005 (RX-6, RX-7, RX-25): a dispense's prescription; the pharmacy holding a
    # prescription; the gateway state where the FHIR status does not tell it
    based_on: str | None = None
    holder_nihdi: str | None = None
    lifecycle: str | None = None
    # migration 0010 (RX-16): a proxy mandate's holder as ``ResourceStore.ssin_hash`` of his SSIN
    holder_hmac: str | None = None


@dataclass(frozen=True)
class StoredVersion:
    resource_type: str
    logical_id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    body: bytes  # the JSON as stored, meta included; sent as is (docs/architecture.md 9: no re-serialising)
    status: str | None = None
    author_nihdi: str | None = None
    columns: SearchColumns = field(default_factory=SearchColumns)  # without the SSIN
    # The body is a view computed when read (RX-7: an expired prescription reads ``stopped``), which
    # can change with no new version: a conditional read answers it in full, never 304.
    computed: bool = False

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass(frozen=True)
class Range:
    """Half-open instant range [low, high); either end may be open. ``outside``: the instants not
    in it (the ``ne`` search prefix). ``gateway.storage.filters.in_range`` says it in SQL."""

    low: datetime | None = None
    high: datetime | None = None
    outside: bool = False


@dataclass(frozen=True)
class Access:
    """The access decision's row conditions for a search of one patient's prescriptions
    (``consent.SearchFilter``), evaluated at ``now`` (RX-7: expiry is computed). ``hidden``: the
    rows the filter hides by the patient's prescriber choice instead, to count them (RX-14)."""

    filter: SearchFilter
    now: datetime
    hidden: bool = False


@dataclass(frozen=True)
class Criteria:
    """A parsed search. Every field narrows the result (AND); ``statuses`` and ``categories``
    are OR lists."""

    patient_ssin: str | None = None
    identifier: tuple[str, str] | None = None
    statuses: tuple[str, ...] = ()
    authored: tuple[Range, ...] = ()
    # A provider: a string matches exactly, ``SamePerson`` a prescriber under any competence code
    # (ID-7, ``gateway.storage.persons``).
    author_nihdi: ProviderMatch | None = None
    categories: tuple[str, ...] = ()
    actor_nihdi: ProviderMatch | None = None
    # Consent searches by a provider: relationships only when they name ``own_relationships_of``.
    own_relationships_of: ProviderMatch | None = None
    based_on: str | None = None  # a dispense's prescription (logical id)
    holder_hmac: str | None = None  # mandates held by this person (RX-16)
    access: Access | None = None
    # Prescriptions by computed state at ``states_at`` (RX-7: ``status=active`` leaves out the
    # expired ones, ``status=stopped`` finds them although they are stored ``active``).
    states: tuple[PrescriptionState, ...] = ()
    states_at: datetime | None = None
    logical_ids: tuple[str, ...] = ()  # ``_id``: any of these (OR)
    last_updated: tuple[Range, ...] = ()  # ``_lastUpdated``: each range (AND)


# What a search may be ordered by (FHIR ``_sort``): the record's creation (the default, newest
# first), its ``authored_on`` column, or the current version's time (``_lastUpdated``).
SORT_KEYS: Final = ("created", "authored", "last_updated")


@dataclass(frozen=True)
class Sort:
    key: str = "created"  # one of SORT_KEYS
    descending: bool = True


NEWEST_FIRST: Final = Sort()


@dataclass(frozen=True)
class Cursor:
    """Keyset paging position: the last row's sort value (``None``: a row without one, which
    sorts last) and id, under the sort it was made for (stable under inserts)."""

    value: datetime | None
    logical_id: str
    sort: Sort = NEWEST_FIRST

    def encode(self) -> str:
        stamp = self.value.isoformat() if self.value is not None else ""
        order = "d" if self.sort.descending else "a"
        raw = f"{self.sort.key}|{order}|{stamp}|{self.logical_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            key, order, stamp, logical_id = raw.split("|", 3)
            if key not in SORT_KEYS or order not in ("a", "d"):
                raise ValueError("a cursor names a known order")
            if not FHIR_ID.fullmatch(logical_id):  # e.g. a NUL, which PostgreSQL refuses (500)
                raise ValueError("a cursor's id is a FHIR id")
            moment = datetime.fromisoformat(stamp) if stamp else None
            # An instant, as ``encode`` wrote it: a naive or unplaceable time is no cursor.
            if moment is not None and moment.tzinfo is None:
                raise ValueError("a cursor's time has a zone")
            value = moment.astimezone(UTC) if moment is not None else None
            return cls(value, logical_id, Sort(key, order == "d"))
        except (ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise BadRequest("invalid paging cursor", expression="_cursor") from exc


@dataclass(frozen=True)
class Paging:
    """How much of a search to return and in what order (FHIR ``_count``, ``_sort``, ``_total``,
    the next link's cursor)."""

    count: int
    cursor: Cursor | None = None
    sort: Sort = NEWEST_FIRST
    with_total: bool = True


@dataclass
class Page:
    items: list[StoredVersion]
    total: int | None  # None: not counted (``_total=none``)
    next_cursor: Cursor | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Told beside the matches, in an OperationOutcome entry of the Bundle (search.mode outcome;
    # FHIR R4 bundle.html#searchset): e.g. that hidden prescriptions exist (RX-14).
    notes: tuple[Issue, ...] = ()


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """``value`` in UTC. Every table column is a ``UtcDateTime`` (``gateway.storage.types``), which
    already reads aware UTC datetimes on both databases; a naive value here is a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an instant needs a time zone")
    return value.astimezone(UTC)


def aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


COLUMN_NAMES = (
    "status",
    "authored_on",
    "author_nihdi",
    "period_start",
    "period_end",
    "category",
    "actor_nihdi",
    "kind",
    "pharmacy_visibility",
    "visible_pharmacy",
    "prescriber_visibility",
    "based_on",
    "holder_nihdi",
    "lifecycle",
    "holder_hmac",
)


def columns_of_row(row: Any) -> SearchColumns:
    """A row's search columns (the patient only as its HMAC: not here)."""
    return SearchColumns(
        status=row.status,
        authored_on=aware_or_none(row.authored_on),
        author_nihdi=row.author_nihdi,
        period_start=aware_or_none(row.period_start),
        period_end=aware_or_none(row.period_end),
        category=row.category,
        actor_nihdi=row.actor_nihdi,
        kind=row.kind,
        pharmacy_visibility=row.pharmacy_visibility,
        visible_pharmacy=row.visible_pharmacy,
        prescriber_visibility=row.prescriber_visibility,
        based_on=row.based_on,
        holder_nihdi=row.holder_nihdi,
        lifecycle=row.lifecycle,
        holder_hmac=row.holder_hmac,
    )
