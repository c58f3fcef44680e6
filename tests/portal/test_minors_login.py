"""Minors on the portal's login page (PO-3): under 16 a patient does not log in himself (from 12 to
16 his own access is blocked, under 12 his parents act for him); on his 16th birthday, in Brussels,
he does. Over HTTP against the app, on the app's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import FastAPI
from structlog.testing import capture_logs

from fhir_profiles.ages import ssin_born_on
from tests.fixtures.clock import Clock
from tests.portal.conftest import Browser, authorize_page, log_in, submit_login

PASSWORD = "a minor's good password"
BORN = date(2010, 6, 15)
TEEN = ssin_born_on(BORN, 21)  # 16 on 15 June 2026
CHILD = ssin_born_on(date(2015, 1, 10), 34)  # 11 in June 2026
# 15 June 2026 00:30 in Brussels (UTC+2) is still 14 June in UTC.
BIRTHDAY_IN_BRUSSELS = datetime(2026, 6, 14, 22, 30, tzinfo=UTC)


async def _refused(browser: Browser, ssin: str, password: str, **headers: str) -> str:
    client = await browser(**headers)
    _, page = await authorize_page(client)
    answer = await submit_login(client, page, ssin, password)
    assert answer.status_code == 403, answer.text
    assert "location" not in answer.headers  # no code goes to the portal
    after = await client.get("/portal/prescriptions")
    assert after.status_code == 303  # still not logged in
    return answer.text


async def test_a_15_year_old_is_refused_and_logs_in_on_his_16th_birthday_in_brussels(
    app: FastAPI, browser: Browser, clock: Clock
) -> None:
    await app.state.auth.accounts.set_password(TEEN, PASSWORD)
    clock.now = datetime(2026, 6, 14, 21, 30, tzinfo=UTC)  # 23:30 on 14 June in Brussels
    with capture_logs() as logs:
        page = await _refused(browser, TEEN, PASSWORD, **{"accept-language": "en"})
    assert "From your 16th birthday you manage your own access." in page
    outcomes = [e["outcome"] for e in logs if e["event"] == "patient_login"]
    assert outcomes == ["minor-blocked"]
    assert TEEN not in repr(logs)

    clock.now = BIRTHDAY_IN_BRUSSELS
    await log_in(await browser(), TEEN, PASSWORD)


async def test_an_11_year_old_is_told_that_his_parents_act_for_him(
    app: FastAPI, browser: Browser, clock: Clock
) -> None:
    await app.state.auth.accounts.set_password(CHILD, PASSWORD)
    clock.now = BIRTHDAY_IN_BRUSSELS
    with capture_logs() as logs:
        page = await _refused(browser, CHILD, PASSWORD, **{"accept-language": "fr-BE"})
    assert "vos parents agissent pour vous" in page
    assert [e["outcome"] for e in logs if e["event"] == "patient_login"] == ["minor-represented"]
    dutch = await _refused(browser, CHILD, PASSWORD, **{"accept-language": "nl-BE"})
    assert "uw ouders handelen voor u" in dutch


async def test_a_minor_with_a_wrong_password_gets_the_usual_answer(
    app: FastAPI, browser: Browser, clock: Clock
) -> None:
    """The age is looked at only once the password is right: no oracle on minors' accounts."""
    await app.state.auth.accounts.set_password(CHILD, PASSWORD)
    clock.now = BIRTHDAY_IN_BRUSSELS
    client = await browser(**{"accept-language": "en"})
    _, page = await authorize_page(client)
    answer = await submit_login(client, page, CHILD, "not the password")
    assert answer.status_code == 401
    assert "parents" not in answer.text


async def test_an_unknown_birth_date_does_not_stop_the_login(
    app: FastAPI, browser: Browser, clock: Clock
) -> None:
    unknown = "15000100122"  # born in 2015, month and day unknown (ID-4): the age is not known
    await app.state.auth.accounts.set_password(unknown, PASSWORD)
    clock.now = BIRTHDAY_IN_BRUSSELS
    await log_in(await browser(), unknown, PASSWORD)
