"""What a prescriber may not write into a prescription: the gateway's own extensions.

The lifecycle extension shows the state the gateway keeps (RX-6, RX-7) and the visibility extension
the patient's choice (RX-13, RX-14); only the operations set them. Sent on create they are refused
(422) rather than dropped: a client that believes it wrote "delivered" or "hidden from pharmacies"
must learn that it did not. ``id``, ``meta.versionId`` and ``meta.lastUpdated`` are different:
FHIR R4 http.html#create says the server ignores them, and the store writes its own.
"""

from __future__ import annotations

from typing import Any, Final

from fhir_profiles import Issue
from fhir_profiles.feedback import FLAG_URL
from gateway.prescriptions.describe import LIFECYCLE_URL, VISIBILITY_URL

_SET_BY: Final = {
    LIFECYCLE_URL: (
        "RX-7",
        "the state is the gateway's: it changes through $take-in-process, $release, $reserve, "
        "$revoke, $archive and dispensing",
    ),
    VISIBILITY_URL: ("RX-13", "the visibility is the patient's choice, set by $set-visibility"),
    FLAG_URL: ("RX-8", "accepting feedback is the author's choice, set by $set-feedback"),
}


def issues(body: dict[str, Any]) -> list[Issue]:
    """One issue per extension of the gateway's that ``body`` carries."""
    found = []
    extensions = body.get("extension")
    for index, extension in enumerate(extensions if isinstance(extensions, list) else ()):
        url = extension.get("url") if isinstance(extension, dict) else None
        if isinstance(url, str) and url in _SET_BY:
            rule, why = _SET_BY[url]
            path = f"MedicationRequest.extension[{index}]"
            found.append(Issue("business-rule", path, f"a client cannot send {url}: {why}", rule))
    return found
