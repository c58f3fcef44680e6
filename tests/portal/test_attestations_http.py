"""The attestations page over HTTP (issue 17, items 3 and 4): the services as the fund attested
them (its ClaimResponse ``addItem``), and the household's maximum-billing counter against its
ceiling. The claims go through the gateway's API to the real mock funds (in process, over HTTP)
and come back through the forwarder and the settlement poller; the portal reads them through the
FHIR API, as the patient."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import httpx

from fhir_profiles.dates import brussels_date
from gateway.portal import views
from tests.claims import conftest as claims
from tests.claims.factories import JAN, claim, item
from tests.portal.conftest import Browser, log_in

# The claims tests' fixtures: the gateway's settings naming two in-process funds, the provider, and
# a forwarder and settlement poller the test drives (the worker's clock is theirs too).
settings = claims.settings
provider = claims.provider
funds = claims.funds
make_worker = claims.make_worker
worker = claims.worker
clock = claims.clock
Worker = claims.Worker
post_claim = claims.post_claim


async def page_of(browser: Browser, **headers: str) -> str:
    client = await browser(**headers)
    await log_in(client)
    answer = await client.get("/portal/attestations")
    assert answer.status_code == 200, answer.text
    # the portal's locales write money as Belgians do: "1.179,10 €", with a no-break space
    return html.unescape(answer.text).replace("\xa0", " ").replace("\u202f", " ")


async def test_a_household_past_its_ceiling(
    browser: Browser, provider: httpx.AsyncClient, worker: Worker
) -> None:
    # Jan's household (the funds' built-in data) is in the lowest bracket: ceiling 254.99.
    # 26 home visits at the legal fee, 10.00 each for the patient
    visits = claim(patient=JAN, items=[item("103132", count=26, price=45.35)])
    assert (await post_claim(provider, visits, key="visits")).status_code == 202
    await worker.deliver()
    await worker.settle()
    consultation = claim(patient=JAN, items=[item("101076")])  # 4.00, now the fund's
    assert (await post_claim(provider, consultation, key="consult")).status_code == 202
    await worker.deliver()
    await worker.settle()

    text = await page_of(browser)
    year = brussels_date(datetime.now(UTC)).year
    assert f"Maximum billing {year}" in text
    assert "Your household's patient shares this year: 264,00 €, for a ceiling of 254,99 €." in text
    assert "Ceiling reached on" in text
    # the visits crossed it (the fund paid 5.01 of them), the consultation is all the fund's
    assert "of which 5,01 € under maximum billing" in text
    assert "of which 4,00 € under maximum billing" in text
    # the services as the fund attested them: code, count, legal fee
    assert "103132 × 26 (1.179,10 €)" in text

    french = await page_of(browser, **{"accept-language": "fr-BE"})
    assert f"Maximum à facturer {year}" in french
    assert "Plafond atteint le" in french
    dutch = await page_of(browser, **{"accept-language": "nl-BE"})
    assert f"Maximumfactuur {year}" in dutch
    assert "Grensbedrag bereikt op" in dutch


async def test_below_the_ceiling_the_page_says_what_is_left(
    browser: Browser, provider: httpx.AsyncClient, worker: Worker
) -> None:
    body = claim(patient=JAN, items=[item("102012", count=2)])  # 2 x 12.00
    assert (await post_claim(provider, body, key="below")).status_code == 202
    await worker.deliver()
    await worker.settle()
    text = await page_of(browser)
    assert "24,00 €, for a ceiling of 254,99 €." in text
    assert "230,99 € more in patient shares" in text
    assert "Ceiling reached" not in text
    assert "under maximum billing" not in text


async def test_before_any_settlement_there_is_no_counter(
    browser: Browser, provider: httpx.AsyncClient
) -> None:
    body = claim(patient=JAN, items=[item("101032", count=2)])
    assert (await post_claim(provider, body, key="queued")).status_code == 202
    text = await page_of(browser)
    assert "Maximum billing" not in text
    # not answered yet: the services are the claim's own
    assert "101032 × 2" in text
    assert "Sent to your health insurance fund" in text


def test_the_services_are_read_from_the_funds_add_item() -> None:
    """hl7-be/eattestation's ClaimResponse lists the services the fund attested in ``addItem``:
    they win over the claim's own lines (here the provider stated another count and price)."""
    sent = claim(patient=JAN, items=[item("101032", count=1, price=25.00)])
    answer = {
        "resourceType": "ClaimResponse",
        "addItem": [
            {
                "itemSequence": [1],
                "provider": [{"identifier": {"system": "x", "value": "12345625004"}}],
                "productOrService": {"coding": [{"code": "101032"}]},
                "servicedDate": "2026-02-03",
                "quantity": {"value": 2},
                "unitPrice": {"value": 30.03, "currency": "EUR"},
                "net": {"value": 60.06, "currency": "EUR"},
                "adjudication": [
                    {"category": {"coding": [{"code": "maximum-billing"}]}, "amount": {"value": 8}}
                ],
            }
        ],
    }
    shown = views.attestation(sent, answer)
    [line] = shown.lines
    assert (line.serviced, line.service, line.quantity) == ("2026-02-03", "101032", 2)
    assert (line.unit_price, line.net, line.paid_by_cap) == (30.03, 60.06, 8)
    assert shown.provider_nihdi == "12345625004"
    assert views.attestation(sent, None).lines[0].net == 25.00  # not answered: the claim's


def _settlement(running_total: float, stored: str, created: str) -> dict[str, object]:
    """A settled ClaimResponse as the fund states maximum billing on it (mutualities)."""
    parts = [
        {"url": "year", "valueInteger": 2026},
        {"url": "ceiling", "valueMoney": {"value": 254.99, "currency": "EUR"}},
        {"url": "runningTotal", "valueMoney": {"value": running_total, "currency": "EUR"}},
    ]
    return {
        "resourceType": "ClaimResponse",
        "meta": {"lastUpdated": stored},
        "created": created,
        "extension": [{"url": views.MAXIMUM_BILLING_URL, "extension": parts}],
    }


def test_AT_1_the_latest_of_settlements_dated_the_same_second_is_shown() -> None:
    """The fund dates a settlement to the second and settles several in one: the counter shown
    is that of the settlement stored last, whatever order the search lists them in (the
    portal lists ClaimResponses by when they were first answered, not settled)."""
    second = "2026-12-07T11:28:46+00:00"
    listed = [
        _settlement(240.00, "2026-12-07T11:28:46.301546+00:00", second),
        _settlement(260.00, "2026-12-07T11:28:46.345017+00:00", second),
        _settlement(120.00, "2026-12-07T11:28:46.261259+00:00", second),
        _settlement(100.00, "2026-12-07T11:28:45.9+00:00", "2026-12-07T11:28:45+00:00"),
    ]
    shown = views.household_ceiling(listed)
    assert shown is not None
    assert shown.running_total == 260.00
    assert views.household_ceiling(list(reversed(listed))) == shown
