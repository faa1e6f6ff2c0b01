"""Every negotiation message a connector sends validates against its DSP 2025-1 schema."""

import jsonschema
import pytest

from contracts import dsp
from contracts.offers import parse_offer
from tests import dsp as schemas
from tests.contracts.conftest import agreement

OFFER = parse_offer(
    {
        "policy": {
            "permission": [
                {
                    "action": "psi.cardinality",
                    "constraint": [
                        {"leftOperand": "count", "operator": "lteq", "rightOperand": 3},
                        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-01-01T00:00:00Z"},
                        {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["risk-control"]},
                    ],
                }
            ]
        },
        "price": {"model": "per_job", "amount_fen": 100},
    }
)
AGREEMENT = agreement(OFFER)
PIDS = {"provider_pid": "urn:uuid:p", "consumer_pid": "urn:uuid:c"}

MESSAGES = [
    (
        dsp.contract_request(
            consumer_pid="urn:uuid:c",
            offer_id="urn:uuid:o",
            target="urn:uuid:d",
            operations=["psi.cardinality"],
            callback="http://127.0.0.1:1/dsp",
            purpose="risk-control",
        ),
        "negotiation/contract-request-message",
    ),
    (dsp.contract_negotiation(state="REQUESTED", **PIDS), "negotiation/contract-negotiation"),
    (
        dsp.negotiation_error(code="policy", reasons=["purpose not permitted"], **PIDS),
        "negotiation/contract-negotiation-error",
    ),
    (
        dsp.agreement_message(
            agreement=AGREEMENT, callback="http://127.0.0.1:2/dsp", signatures={"telecom": "sig"}, **PIDS
        ),
        "negotiation/contract-agreement-message",
    ),
    (
        dsp.verification_message(signature="sig", **PIDS),
        "negotiation/contract-agreement-verification-message",
    ),
    (dsp.event_message(event_type="FINALIZED", **PIDS), "negotiation/contract-negotiation-event-message"),
    (
        dsp.termination_message(code="terminated", reasons=["project closed"], **PIDS),
        "negotiation/contract-negotiation-termination-message",
    ),
]


@pytest.mark.parametrize(("message", "schema"), MESSAGES, ids=[m[0]["@type"] for m in MESSAGES])
def test_message_validates(message: dict, schema: str) -> None:
    schemas.validate(message, schema)


def test_the_validator_is_not_vacuous() -> None:
    bad = dsp.event_message(event_type="FINALIZED", **PIDS)
    bad["eventType"] = "DONE"
    with pytest.raises(jsonschema.ValidationError, match="'DONE' is not one of"):
        schemas.validate(bad, "negotiation/contract-negotiation-event-message")
