"""Languages (French, Dutch, English): Babel message catalogs, the choice of a language, and
locale-aware dates and amounts.

Catalogs live in ``locale/<lang>/LC_MESSAGES/messages.po``; the compiled ``.mo`` files are
committed beside them, so installing needs no build step (README, "Translations"). The language is
the session's (or the ``portal_lang`` cookie's) when the patient chose one, else the best match of
``Accept-Language``, else English.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.core import negotiate_locale
from babel.support import NullTranslations, Translations

from fhir_profiles.dates import BRUSSELS

LOCALES = ("fr", "nl", "en")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_COOKIE = "portal_lang"
# Formatting follows Belgian conventions in each language (CLDR fr_BE, nl_BE, en_BE).
_FORMAT_LOCALE = {"fr": "fr_BE", "nl": "nl_BE", "en": "en_BE"}
_MAX_HEADER = 512


def N_(message: str) -> str:  # the gettext convention pybabel extracts (-k N_)
    """Mark an English message for the catalog; it is translated where it is shown."""
    return message


def supported(value: str | None) -> str | None:
    return value if value in LOCALES else None


def negotiate(accept_language: str | None) -> str:
    """RFC 9110 section 12.5.4: the supported language with the highest q-value."""
    if not accept_language:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language[:_MAX_HEADER].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    preferred = [tag for _, _, tag in sorted(ranked)]
    return negotiate_locale(preferred, list(LOCALES), sep="-") or DEFAULT_LOCALE


@lru_cache(maxsize=8)
def translations(locale: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def _format_locale(locale: str) -> Locale:
    return Locale.parse(_FORMAT_LOCALE.get(locale, "en_BE"))


def parse_moment(value: object) -> datetime | date | None:
    """A FHIR date or dateTime (string) as a date or an aware datetime; anything else: None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if "T" not in value:
            return date.fromisoformat(value[:10])
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=BRUSSELS)


class Formatter:
    """Dates (Europe/Brussels) and euro amounts in one language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._babel = _format_locale(locale)

    def date(self, value: object) -> str:
        moment = value if isinstance(value, date | datetime) else parse_moment(value)
        if moment is None:
            return ""
        if isinstance(moment, datetime):
            moment = moment.astimezone(BRUSSELS).date()
        return dates.format_date(moment, format="medium", locale=self._babel)

    def datetime(self, value: object) -> str:
        moment = value if isinstance(value, date | datetime) else parse_moment(value)
        if moment is None:
            return ""
        if not isinstance(moment, datetime):
            return self.date(moment)
        return dates.format_datetime(moment, format="medium", tzinfo=BRUSSELS, locale=self._babel)

    def money(self, value: object, currency: str = "EUR") -> str:
        if value is None or isinstance(value, bool):
            return ""
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return ""
        return numbers.format_currency(amount, currency, locale=self._babel)
