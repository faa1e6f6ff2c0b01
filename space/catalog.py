"""The catalog: publishing entries (metadata only) under the negative list, search, DCAT."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.agreements import DSP_CONTEXT, TDS_CONTEXT
from contracts.errors import OfferError
from contracts.offers import parse_offer
from policies.negative_list import ListRule, check_entry
from space import pricing
from space.errors import Conflict, NotFound, Refused
from space.models import CatalogEntry, Offer, Participant
from space.settings import SpaceSettings

CLASSIFICATIONS = ("general", "important", "core")  # GB/T 43697-2024 data grading
PI_LEVELS = ("none", "general", "sensitive")  # personal information (PIPL art. 28)
COLUMN_TYPES = ("string", "integer", "number", "boolean", "date")
MAX_RESULTS = 200
MAX_MOCK = 1 << 20  # characters of a mock sample (200 rows of a wide table fit many times)


def _text(body: dict[str, Any], key: str, limit: int, required: bool = True) -> str:
    value = body.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise Refused(f"dataset.{key}: expected a non-empty string of at most {limit} characters")
    return value.strip()


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in allowed:
        raise Refused(f"dataset.{key}: expected one of {list(allowed)}, got {value!r}")
    return str(value)


def _mock(mock: Any, names: list[str]) -> str | None:
    """A mock sample is optional; when sent, a CSV whose header is the entry's columns."""
    if mock is None:
        return None
    if not isinstance(mock, str) or len(mock) > MAX_MOCK:
        raise Refused(f"mock: expected the mock sample as CSV text of at most {MAX_MOCK} characters")
    try:
        rows = list(csv.reader(io.StringIO(mock), strict=True))
    except csv.Error as exc:
        raise Refused(f"mock: not CSV: {exc}") from exc
    header = rows[0] if rows else []
    if header != names:
        raise Refused(f"mock: expected a header of the entry's columns {names}, got {header}")
    if any(len(row) != len(names) for row in rows[1:]):
        raise Refused(f"mock: every row must have the {len(names)} columns of the header")
    return mock


def validate_entry(body: Any, provider: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check a publish request; return (dataset fields, offer documents) or raise Refused."""
    if not isinstance(body, dict) or not isinstance(body.get("dataset"), dict):
        raise Refused('expected {"dataset": {...}, "offers": [...]}')
    ds = body["dataset"]
    keywords = ds.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise Refused("dataset.keywords: expected a list of non-empty strings")
    columns = ds.get("columns")
    if not isinstance(columns, list) or not columns:
        raise Refused("dataset.columns: expected the list of columns with name, type and tags")
    for i, column in enumerate(columns):
        if (
            not isinstance(column, dict)
            or not isinstance(column.get("name"), str)
            or column.get("type") not in COLUMN_TYPES
            or not isinstance(column.get("tags", []), list)
        ):
            raise Refused(
                f"dataset.columns[{i}]: expected {{name, type in {list(COLUMN_TYPES)}, tags: [...]}}"
            )
    key_column = _text(ds, "key_column", 200)
    if key_column not in [c["name"] for c in columns]:
        raise Refused(f"dataset.key_column {key_column!r} is not one of the columns")
    row_count = ds.get("row_count")
    if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 0:
        raise Refused("dataset.row_count: expected a whole number ≥ 0")
    profile = ds.get("profile", {})
    if not isinstance(profile, dict):
        raise Refused("dataset.profile: expected an object")
    fields = {
        "name": _text(ds, "name", 100),
        "title": _text(ds, "title", 300),
        "description": _text(ds, "description", 5000, required=False),
        "keywords": keywords,
        "sector": _text(ds, "sector", 50),
        "columns": columns,
        "key_column": key_column,
        "row_count": row_count,
        "profile": profile,
        "classification": _choice(ds, "classification", CLASSIFICATIONS),
        "pi_level": _choice(ds, "pi_level", PI_LEVELS),
        "jurisdiction": _text(ds, "jurisdiction", 20),
        "mock": _mock(body.get("mock"), [c["name"] for c in columns]),
    }
    offers = body.get("offers")
    if not isinstance(offers, list) or not offers:
        raise Refused("offers: expected at least one offer")
    parsed = []
    for i, raw in enumerate(offers):
        try:
            parsed.append(parse_offer(raw, provider).to_json())
        except OfferError as exc:
            raise Refused(f"offers[{i}]: {exc}") from exc
    return fields, parsed


def rule_view(fields: dict[str, Any]) -> dict[str, Any]:
    """The entry as the negative list sees it: semantic tags gathered from the columns."""
    tags = sorted({tag for column in fields["columns"] for tag in column.get("tags", [])})
    return {**fields, "semantic_tags": tags}


def publish(
    session: Session, provider: Participant, body: Any, rules: tuple[ListRule, ...], settings: SpaceSettings
) -> CatalogEntry:
    fields, offers = validate_entry(body, provider.id)
    if "provider" not in provider.roles:
        raise Refused(f"{provider.id} is not registered as a provider", status=403)
    verdict = check_entry(rules, rule_view(fields))
    if verdict.status == "prohibited":
        assert verdict.rule is not None
        raise Refused(
            f"prohibited by negative-list rule {verdict.rule.id}: {verdict.rule.reason}",
            kind="prohibited",
            rule=verdict.rule.id,
        )
    # the offers' pricing rules, once the entry itself may be listed at all
    for i, offer in enumerate(offers):
        try:
            pricing.check_offer(session, settings, provider.id, fields["sector"], offer)
        except Refused as exc:
            raise Refused(f"offers[{i}]: {exc.detail}", kind=exc.kind) from exc
    existing = session.scalar(
        select(CatalogEntry).where(
            CatalogEntry.provider_id == provider.id, CatalogEntry.name == fields["name"]
        )
    )
    if existing is not None:
        raise Conflict(f"{provider.id} already published a dataset named {fields['name']!r} ({existing.id})")
    operations = sorted({op for offer in offers for op in offer["operations"]})
    entry = CatalogEntry(
        id=f"urn:uuid:{uuid.uuid4()}",
        provider_id=provider.id,
        **fields,
        operations=" " + " ".join(operations) + " ",
        search_text=" ".join([fields["title"], fields["description"], *fields["keywords"]]).casefold(),
        status="pending_review" if verdict.status == "restricted" else "published",
        review_rule=verdict.describe() if verdict.rule else None,
    )
    session.add(entry)
    for offer in offers:
        session.add(Offer(id=f"urn:uuid:{uuid.uuid4()}", entry_id=entry.id, document=offer))
    session.flush()
    return entry


def offers_of(session: Session, entry_id: str) -> list[Offer]:
    return list(session.scalars(select(Offer).where(Offer.entry_id == entry_id).order_by(Offer.id)))


def entry_view(session: Session, entry: CatalogEntry, provider: Participant | None = None) -> dict[str, Any]:
    provider = provider or session.get(Participant, entry.provider_id)
    assert provider is not None
    return {
        "id": entry.id,
        "provider": entry.provider_id,
        "provider_name": provider.legal_name,
        "endpoint": provider.endpoint,
        "name": entry.name,
        "title": entry.title,
        "description": entry.description,
        "keywords": entry.keywords,
        "sector": entry.sector,
        "columns": entry.columns,
        "key_column": entry.key_column,
        "row_count": entry.row_count,
        "profile": entry.profile,
        "classification": entry.classification,
        "pi_level": entry.pi_level,
        "jurisdiction": entry.jurisdiction,
        "status": entry.status,
        "review_rule": entry.review_rule,
        "published_at": entry.published_at.isoformat(),
        "mock": entry.mock is not None,
        "offers": [{"id": o.id, **o.document} for o in offers_of(session, entry.id)],
    }


def get_entry(session: Session, entry_id: str, include_unpublished: bool = False) -> CatalogEntry:
    entry = session.get(CatalogEntry, entry_id)
    if entry is None or (entry.status != "published" and not include_unpublished):
        raise NotFound(f"no published catalog entry {entry_id!r}")
    return entry


def get_offer(session: Session, offer_id: str) -> tuple[Offer, CatalogEntry]:
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"no offer {offer_id!r}")
    return offer, get_entry(session, offer.entry_id)


def search(
    session: Session,
    text: str = "",
    sector: str | None = None,
    operation: str | None = None,
    limit: int = 50,
) -> list[CatalogEntry]:
    """Published entries whose title, description or keywords contain every word of ``text``."""
    query = select(CatalogEntry).where(CatalogEntry.status == "published")
    for word in text.casefold().split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(CatalogEntry.search_text.like(f"%{escaped}%", escape="\\"))
    if sector:
        query = query.where(CatalogEntry.sector == sector)
    if operation:
        query = query.where(CatalogEntry.operations.like(f"% {operation} %"))
    limit = max(1, min(limit, MAX_RESULTS))
    return list(session.scalars(query.order_by(CatalogEntry.published_at.desc()).limit(limit)))


def pending_reviews(session: Session) -> list[CatalogEntry]:
    return list(session.scalars(select(CatalogEntry).where(CatalogEntry.status == "pending_review")))


def review(session: Session, entry_id: str, approve: bool, note: str) -> CatalogEntry:
    entry = session.get(CatalogEntry, entry_id)
    if entry is None:
        raise NotFound(f"no catalog entry {entry_id!r}")
    if entry.status != "pending_review":
        raise Conflict(f"entry {entry_id} is {entry.status}, not waiting for review")
    entry.status = "published" if approve else "rejected"
    entry.review_note = note
    return entry


def _mock_distribution(entry: CatalogEntry, space_url: str) -> list[dict[str, Any]]:
    """The mock sample as a distribution of its own: synthetic rows, not the data (DCAT 3
    §6.7 downloadURL; the format says what it is). The Dataspace Protocol's catalog schema
    requires every distribution to name its access service: the space's catalog serves it."""
    if entry.mock is None:
        return []
    return [
        {
            "@type": "Distribution",
            "format": "tds:MockSample",
            "mediaType": "text/csv",
            "downloadURL": f"{space_url}/catalog/{entry.id}/mock.csv",
            "accessService": {
                "@id": f"{space_url}#catalog",
                "@type": "DataService",
                "endpointURL": f"{space_url}/catalog",
            },
        }
    ]


def dcat_catalog(session: Session, space_url: str) -> dict[str, Any]:
    """The published catalog as a Dataspace Protocol ``Catalog`` (DCAT 3 in JSON-LD)."""
    datasets = []
    for entry in session.scalars(
        select(CatalogEntry).where(CatalogEntry.status == "published").order_by(CatalogEntry.id)
    ):
        provider = session.get(Participant, entry.provider_id)
        assert provider is not None
        datasets.append(
            {
                "@id": entry.id,
                "@type": "Dataset",
                "title": entry.title,
                "description": [{"@value": entry.description, "@language": "zh"}]
                if entry.description
                else [],
                "keyword": entry.keywords,
                "theme": entry.sector,
                "tds:provider": entry.provider_id,
                "tds:rowCount": entry.row_count,
                "tds:classification": entry.classification,
                "tds:piLevel": entry.pi_level,
                "hasPolicy": [
                    {
                        "@id": offer.id,
                        "@type": "Offer",
                        **{k: v for k, v in offer.document["policy"].items()},
                        "tds:price": offer.document["price"],
                    }
                    for offer in offers_of(session, entry.id)
                ],
                "distribution": [
                    {
                        "@type": "Distribution",
                        "format": "tds:Compute",
                        "accessService": {
                            "@id": f"{provider.endpoint}#connector",
                            "@type": "DataService",
                            "endpointURL": provider.endpoint,
                        },
                    },
                    *_mock_distribution(entry, space_url),
                ],
            }
        )
    catalog: dict[str, Any] = {
        "@context": [DSP_CONTEXT, TDS_CONTEXT],
        "@id": f"{space_url}/catalog",
        "@type": "Catalog",
        "participantId": "space",
    }
    if datasets:  # DSP 2025-1 catalog-schema: "dataset" has minItems 1 when present
        catalog["dataset"] = datasets
    return catalog
