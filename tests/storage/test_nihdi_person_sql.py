"""Finding a provider in SQL agrees with ``consent.same_provider`` (domain ID-7, ID-9).

Over stored rows whose author NIHDI takes every form that could confuse a prefix match (the same
person under two competence codes and in the 8-digit form, the namesake of the other check-digit
series, 9-, 10- and 12-character prefixes, pharmacy numbers), ``ResourceStore.search`` returns
exactly the rows the Python rule accepts: by person for a prescriber, exactly otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from consent import Role, same_provider
from gateway.cli import new_encryption_key
from gateway.db import create_engine, session_factory
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring
from gateway.storage.persons import ProviderMatch, SamePerson, provider_match
from gateway.storage.store import Criteria, ResourceStore, SearchColumns
from tests.fixtures.nihdi import nihdi

GP = nihdi("198765", "004", series=89)
SPECIALIST = nihdi("198765", "580", series=89)
NAMESAKE = nihdi("198765", "004")  # same first six digits, modulo-97 series: another person
PHARMACY, PHARMACY_LONG = "06012345", "06012345001"
STORED = [
    GP,
    SPECIALIST,
    GP[:8],
    GP[:9],
    GP[:10],
    GP + "0",
    NAMESAKE,
    NAMESAKE[:8],
    PHARMACY,
    PHARMACY_LONG,
]
WANTED = [GP, SPECIALIST, GP[:8], NAMESAKE, GP[:10], PHARMACY]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ResourceStore]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        yield ResourceStore(session, Keyring(decode_key(new_encryption_key())))
    await engine.dispose()


async def authors_found(store: ResourceStore, wanted: ProviderMatch) -> list[str]:
    page = await store.search("Claim", Criteria(author_nihdi=wanted), count=100)
    return sorted(str(item.author_nihdi) for item in page.items)


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.PHARMACIST])
async def test_ID_7_sql_finds_the_provider_as_the_decision_does(
    store: ResourceStore, role: Role
) -> None:
    for author in STORED:
        columns = SearchColumns(author_nihdi=author)
        await store.create("Claim", {"resourceType": "Claim"}, columns)
    session: AsyncSession = store.session
    await session.commit()

    for wanted in WANTED:
        expected = sorted(a for a in STORED if same_provider(a, wanted, role))
        assert await authors_found(store, provider_match(role, wanted)) == expected, wanted


async def test_ID_7_a_prescriber_is_found_under_every_competence_code_and_no_other_person(
    store: ResourceStore,
) -> None:
    for author in STORED:
        await store.create("Claim", {"resourceType": "Claim"}, SearchColumns(author_nihdi=author))
    await store.session.commit()
    assert await authors_found(store, SamePerson(SPECIALIST)) == sorted([GP, SPECIALIST, GP[:8]])
    assert await authors_found(store, PHARMACY) == [PHARMACY]  # an organisation: exactly (ID-9)
