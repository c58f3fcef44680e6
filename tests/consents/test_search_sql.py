"""The SQL form of the search filter agrees with the decision (docs/architecture.md 5: hidden prescriptions are
filtered before counting and paging; domain RX-7, RX-9, RX-13, RX-14).

Over a grid of stored prescriptions (author, status, validity end, both visibility flags), the rows
``ResourceStore.search`` returns under a ``consent.SearchFilter`` are exactly those that
``SearchFilter.matches`` accepts for the same prescriptions described as the decision sees them,
and the rows counted as hidden from a prescriber (RX-14) those ``SearchFilter.hides`` names.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from consent import OPEN_STATES, Decision, Reason, SearchFilter
from gateway.cli import new_encryption_key
from gateway.db import create_engine, session_factory
from gateway.prescriptions.describe import resource_of
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring
from gateway.storage.store import Access, Criteria, ResourceStore, SearchColumns
from tests.fhir_profiles.factories import SSIN

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
A, B = "19234011004", "12345625004"
P1, P2 = "06012345", "06054321"
PERMIT = Decision(True, Reason.PERMIT_RELATIONSHIP)

FILTERS = {
    "patient": SearchFilter(Decision(True, Reason.PERMIT_PATIENT_SELF), everything=True),
    "author only": SearchFilter(Decision(True, Reason.PERMIT_AUTHOR), author_nihdi=A),
    "prescriber network": SearchFilter(
        PERMIT,
        author_nihdi=A,
        others=True,
        states=OPEN_STATES,
        prescribers_open=True,
        tells_hidden=True,
    ),
    # RX-14: B is in A's GMF practice (as his 8-digit person); A is in the GMF holder's practice
    "prescriber gmf colleague": SearchFilter(
        PERMIT,
        author_nihdi=A,
        others=True,
        states=OPEN_STATES,
        prescribers_open=True,
        gmf_authors=frozenset({B[:8]}),
        tells_hidden=True,
    ),
    "prescriber gmf holder": SearchFilter(
        PERMIT,
        author_nihdi=A,
        others=True,
        states=OPEN_STATES,
        prescribers_open=True,
        gmf_all=True,
        tells_hidden=True,
    ),
    "pharmacy": SearchFilter(PERMIT, others=True, states=OPEN_STATES, pharmacy_nihdi=P1),
    "denied": SearchFilter(Decision(False, Reason.NO_CONSENT)),
}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ResourceStore]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        yield ResourceStore(session, Keyring(decode_key(new_encryption_key())))
    await engine.dispose()


async def fill(store: ResourceStore) -> None:
    grid = itertools.product(
        (A, B),
        ("active", "completed", "cancelled", "stopped"),
        (NOW - timedelta(days=1), NOW + timedelta(days=1)),
        (None, "all", "one-p1", "one-p2", "none"),
        (None, "open", "closed", "gmf"),
    )
    for author, status, end, pharmacies, prescribers in grid:
        visible = {"one-p1": P1, "one-p2": P2}.get(pharmacies or "")
        columns = SearchColumns(
            patient_ssin=SSIN,
            status=status,
            author_nihdi=author,
            period_end=end,
            pharmacy_visibility="one" if visible else pharmacies,
            visible_pharmacy=visible,
            prescriber_visibility=prescribers,
        )
        await store.create("MedicationRequest", {"resourceType": "MedicationRequest"}, columns)
    session: AsyncSession = store.session
    await session.commit()


@pytest.mark.parametrize("name", FILTERS)
async def test_RX_13_RX_14_sql_filter_agrees_with_the_decision(
    store: ResourceStore, name: str
) -> None:
    await fill(store)
    everything = await store.search("MedicationRequest", Criteria(patient_ssin=SSIN), count=1000)
    assert everything.total == 320
    search = FILTERS[name]
    expected = {
        row.logical_id
        for row in everything.items
        if search.matches(resource_of(row, row.json(), SSIN, NOW))
    }
    found = await store.search(
        "MedicationRequest",
        Criteria(patient_ssin=SSIN, access=Access(search, NOW)),
        count=1000,
    )
    assert {row.logical_id for row in found.items} == expected
    assert found.total == len(expected)
    assert expected or name == "denied"
    if name == "patient":
        assert found.total == 320
    if name == "denied":
        assert found.total == 0


@pytest.mark.parametrize("name", FILTERS)
async def test_RX_14_sql_counts_what_the_filter_hides(store: ResourceStore, name: str) -> None:
    await fill(store)
    everything = await store.search("MedicationRequest", Criteria(patient_ssin=SSIN), count=1000)
    search = FILTERS[name]
    expected = {
        row.logical_id
        for row in everything.items
        if search.hides(resource_of(row, row.json(), SSIN, NOW))
    }
    hidden = await store.search(
        "MedicationRequest",
        Criteria(patient_ssin=SSIN, access=Access(search, NOW, hidden=True)),
        count=1000,
    )
    assert {row.logical_id for row in hidden.items} == expected
    assert hidden.total == len(expected)
    # Only a prescriber who may see others' prescriptions is told; B's open closed ones at least.
    assert bool(expected) == search.tells_hidden
