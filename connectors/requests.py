"""The bodies a connector takes, as typed objects (node.bodies: strict, closed, frozen).

The participant's API (``/api``): a dataset to register, a contract to ask for, a job to run
(one model per operation, :data:`connectors.jobs.REQUESTS` says which). The Dataspace Protocol
messages a peer sends (DSP 2025-1 §3.3 contract negotiation; JSON-LD, so further terms pass) and
the job messages between connectors. What each field means beyond its type (a name's pattern,
a file that exists, an operation the offer includes) is checked by the service that uses it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from node.bodies import Body, Message


# --- the participant's API -------------------------------------------------------------------
class NewDataset(Body):
    name: str
    path: str
    key_column: str
    title: str | None = None
    description: str | None = None
    sector: str | None = None
    keywords: list[str] = Field(default_factory=list)
    classification: str | None = None
    pi_level: str | None = None
    jurisdiction: str | None = None
    tags: dict[str, list[str]] = Field(default_factory=dict)


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Publication(Body):
    # one offer, or a list of them; each parsed by contracts.offers.parse_offer
    offers: Annotated[list[dict[str, Any]], BeforeValidator(_one_or_more)]


class ContractRequest(Body):
    offer: str
    purpose: str
    operations: list[str]
    price: dict[str, Any] | None = None  # contracts.offers.parse_price reads it


class Reason(Body):
    reason: str | None = None


class JobRequest(Body):
    operation: str


class PsiJob(JobRequest):
    agreement: str
    input: str  # the consumer's own CSV
    column: str
    epsilon: float | None = None  # psi.cardinality counted by the provider with noise of ε
    sum: str | None = None  # psi.sum: the provider's column to sum
    by: str | None = None  # psi.sum: the provider's column whose categories are summed apart


class ScoreJob(JobRequest):
    operation: Literal["he.score"]
    agreement: str
    ids: str  # the consumer's CSV of ids
    column: str
    model: str  # the consumer's model as JSON: features, weights, bias


class AggregateJob(JobRequest):
    operation: Literal["he.aggregate"]
    agreements: list[str] = Field(min_length=1)
    stats: list[str]
    column: str | None = None
    target: str | None = None
    features: list[str] | None = None
    bins: list[float] | None = None
    where: str | None = None
    epsilon: float | None = None
    bounds: list[float] | None = None
    mechanism: str | None = None
    delta: float | None = None


class ScriptJob(JobRequest):
    """A reviewed script to run under an agreement: the code itself (``tds job submit --code``
    reads the file), its arguments, why it should run, and the columns of the table it leaves
    (none: it leaves a JSON object)."""

    operation: Literal["script"]
    agreement: str
    code: str
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    columns: list[str] | None = None


class NewToken(Body):
    role: Literal["admin", "reviewer"]
    label: str = ""  # who it is for: a reviewer's steps name them so


class Approval(Body):
    runs: int = 1  # the runs the approval grants (runsPerApproval bounds them)
    note: str = ""


class Note(Body):
    note: str


class OptionalNote(Body):
    note: str = ""


# --- between connectors ----------------------------------------------------------------------
class ScriptSubmission(Body):
    """A consumer's script at its provider's connector; ``code_sha256`` is what an approval pins."""

    job: str
    agreement: str
    code: str
    code_sha256: str
    args: dict[str, Any]
    reason: str
    columns: list[str] | None


class ScriptNews(Body):
    """The provider's word on a script job: its state, and once it has ended the signed usage
    record, with the signed step that released the output and the output itself."""

    state: str
    usage_record: dict[str, Any] | None = None
    step: dict[str, Any] | None = None
    output: str | None = None
    output_format: str | None = None
    detail: str = ""


class Permission(Message):
    action: str


class RequestedOffer(Message):
    id: str = Field(alias="@id")
    permission: list[Permission] = Field(default_factory=list)


class ContractRequestMessage(Message):
    type: Literal["ContractRequestMessage"] = Field(alias="@type")
    consumer_pid: str = Field(alias="consumerPid")
    offer: RequestedOffer
    callback_address: str | None = Field(None, alias="callbackAddress")
    purpose: str | None = Field(None, alias="tds:purpose")
    price: dict[str, Any] | None = Field(None, alias="tds:price")


class ContractAgreementMessage(Message):
    type: Literal["ContractAgreementMessage"] = Field(alias="@type")
    provider_pid: str | None = Field(None, alias="providerPid")
    agreement: dict[str, Any]  # the document the provider signed: checked by contracts.agreements
    signatures: dict[str, str] = Field({}, alias="tds:signatures")


class VerificationMessage(Message):
    type: Literal["ContractAgreementVerificationMessage"] = Field(alias="@type")
    signature: str = Field(alias="tds:signature")


class EventMessage(Message):
    type: Literal["ContractNegotiationEventMessage"] = Field(alias="@type")
    event_type: str = Field(alias="eventType")


class TerminationMessage(Message):
    type: Literal["ContractNegotiationTerminationMessage"] = Field(alias="@type")
    reason: list[str] = Field(default_factory=list)


class Withheld(Body):
    record: str  # the id of the succeeded record the consumer withheld


class Countersignature(Body):
    record: str | None = None  # which of the job's records (a job has one, or two when withheld)
    signatures: dict[str, str]


class PsiJobHeader(Body):
    """The framed request of a PSI job, as the consumer's connector sends it."""

    job: str
    agreement: str
    operation: str
    consumer_set_size: int = Field(ge=1)
    mode: str | None = None
    epsilon: float | None = None
    # the PSI engine of the run (sandbox.ops.psi_engines); none: openmined-psi on P-256, as every
    # request meant before there was a choice
    engine: Literal["ecdh-p256", "ecdh-x25519"] = "ecdh-p256"
    sum: str | None = None  # psi.sum (connectors.psi_sum)
    by: str | None = None
    blobs: int  # how many blobs follow the header (sandbox.framing)
