"""The one mapping between the eAttest request message and the gateway's Claim, both ways
(``fhir_profiles.eattest_message``): what the door stores is what the forwarder sends on."""

from __future__ import annotations

from typing import Any

from fhir_profiles.eattest_message import CreateMessage, claim_to_message, read_message
from tests.claims.factories import claim
from tests.claims.message_factories import create_message, with_supplements


def mapped(message: dict[str, Any]) -> CreateMessage:
    read = read_message(message)
    assert isinstance(read, CreateMessage), read
    return read


def test_a_message_read_sent_on_and_read_again_is_the_same_claim() -> None:
    first = mapped(create_message(with_supplements(claim(), 1.0), membership=("300", "A12345")))
    again = claim_to_message(
        first.claim, bundle_id="b-1", event="eattest-create", timestamp="2025-01-06T10:00:00Z"
    )
    assert mapped(again).claim == first.claim
    # Every entry of the provider's message is kept, contained under its uuid.
    kinds = sorted(r["resourceType"] for r in first.claim["contained"])
    assert kinds == ["Patient", "Practitioner", "PractitionerRole"]
    assert first.claim["patient"]["identifier"]["system"].endswith("insurancymembership")


def test_a_claim_posted_bare_is_sent_on_as_the_same_message_every_attempt() -> None:
    bare = claim()
    one = claim_to_message(bare, bundle_id="c-1", event="eattest-create", timestamp="t1")
    two = claim_to_message(bare, bundle_id="c-1", event="eattest-create", timestamp="t2")
    assert {k: v for k, v in one.items() if k != "timestamp"} == {
        k: v for k, v in two.items() if k != "timestamp"
    }
    kinds = [e["resource"]["resourceType"] for e in one["entry"]]
    assert kinds == ["MessageHeader", "Patient", "PractitionerRole", "Practitioner", "Claim"]
    sent = one["entry"][-1]["resource"]
    assert sent["patient"]["identifier"] == bare["patient"]["identifier"]
    assert sent["patient"]["reference"] == one["entry"][1]["fullUrl"]
    header = one["entry"][0]["resource"]
    assert header["focus"] == [{"reference": one["entry"][-1]["fullUrl"]}]
