"""Errors raised by :mod:`contracts`.

ContractError                   root
├── KeyFileError                a key file is missing, unreadable, of the wrong type or too open
├── SignatureError              a document signature is missing or does not verify
├── RequestSignatureError       an HTTP message signature is refused (RFC 9421); has .reason
├── CreditCodeError             a unified social credit code fails GB 32100 validation
├── OfferError                  an offer (policy, price, operations) is malformed
├── AgreementError              an agreement document is malformed or does not match the request
│   └── StateTransitionError    a negotiation event is not allowed in the current state
└── UsageRecordError            a usage record is malformed
"""


class ContractError(Exception):
    """Root of every error raised by the contracts package."""


class KeyFileError(ContractError):
    pass


class SignatureError(ContractError):
    pass


class RequestSignatureError(ContractError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"request signature refused: {reason}")
        self.reason = reason


class CreditCodeError(ContractError):
    pass


class OfferError(ContractError):
    pass


class AgreementError(ContractError):
    pass


class StateTransitionError(AgreementError):
    pass


class UsageRecordError(ContractError):
    pass
