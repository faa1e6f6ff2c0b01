"""Registering local datasets (copied into the data directory and profiled) and publishing
their catalog entries — metadata, profile and offers only — to the space."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors import identifiers
from connectors.context import Connector
from connectors.errors import Conflict, NotFound, Refused
from connectors.mock import mock_sample
from connectors.models import Dataset
from connectors.profiling import ProfileError, profile_csv
from connectors.requests import NewDataset
from contracts.errors import OfferError
from contracts.offers import parse_offer
from node.config import write_file
from node.signing import RemoteError
from policies import operations
from sandbox.limits import Limits
from sandbox.ops import script

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MOCK_K = 10  # the least count behind a value in a mock sample when no offer sets resultSize
CLASSIFICATIONS = ("general", "important", "core")
PI_LEVELS = ("none", "general", "sensitive")


def _choice(key: str, value: str | None, allowed: tuple[str, ...], default: str) -> str:
    value = value or default
    if value not in allowed:
        raise Refused(f"{key}: expected one of {list(allowed)}, got {value!r}")
    return value


def add(ctx: Connector, body: NewDataset) -> Dataset:
    """Profile the CSV at ``body.path``, then copy it in; on any error nothing is stored."""
    name = body.name
    if not NAME.match(name):
        raise Refused(f"dataset name {name!r}: expected 1–64 of a-z, 0-9, '_' and '-'")
    source = Path(body.path)
    if not source.is_file():
        raise Refused(f"{source}: no such file; give the path of a UTF-8 CSV with a header row")
    key_column = body.key_column
    if not key_column:
        raise Refused("key_column: name the column that holds the join key (--key COLUMN)")
    tags = body.tags
    classification = _choice("classification", body.classification, CLASSIFICATIONS, "general")
    pi_level = _choice("pi_level", body.pi_level, PI_LEVELS, "none")
    keywords = body.keywords
    if not all(keywords):
        raise Refused("keywords: expected a list of non-empty strings")
    with ctx.db.session() as session:
        if session.get(Dataset, name) is not None:
            raise Conflict(f"a dataset named {name!r} is already registered")
    try:
        profile = profile_csv(source, key_column, {k: list(v) for k, v in tags.items()})
    except ProfileError as exc:
        raise Refused(str(exc), kind="bad-csv") from exc
    folder = ctx.config.path / "datasets"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{name}.csv"
    partial = folder / f".{name}.csv.partial"
    shutil.copyfile(source, partial)
    os.chmod(partial, 0o600)
    dataset = Dataset(
        name=name,
        path=str(target),
        key_column=profile["key_column"],
        title=body.title or name,
        description=body.description or "",
        keywords=list(keywords),
        sector=body.sector or "其他",
        classification=classification,
        pi_level=pi_level,
        jurisdiction=body.jurisdiction or "CN",
        columns=profile["columns"],
        row_count=profile["row_count"],
        profile={k: profile[k] for k in ("key_distinct", "key_uniqueness")},
        offers=[],
    )
    try:
        with ctx.db.transaction() as session:
            session.add(dataset)
            session.flush()
            os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return dataset


def get(ctx: Connector, name: str) -> Dataset:
    with ctx.db.session() as session:
        dataset = session.get(Dataset, name)
    if dataset is None:
        raise NotFound(f"no dataset named {name!r} at this connector")
    return dataset


def list_all(ctx: Connector) -> list[Dataset]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Dataset).order_by(Dataset.name)))


def view(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "title": dataset.title,
        "key_column": dataset.key_column,
        "row_count": dataset.row_count,
        "columns": dataset.columns,
        "profile": dataset.profile,
        "sector": dataset.sector,
        "classification": dataset.classification,
        "pi_level": dataset.pi_level,
        "catalog_id": dataset.catalog_id,
        "catalog_status": dataset.catalog_status,
        "offers": dataset.offers,
    }


def publish(ctx: Connector, name: str, offers: Any) -> dict[str, Any]:
    dataset = get(ctx, name)
    if dataset.catalog_id is not None:
        # a published entry does not change yet (versions of a product are still to come): the
        # refusal says what can be done today
        raise Conflict(
            f"dataset {name!r} is already published as {dataset.catalog_id}, and a published entry's "
            "offers cannot be changed; to offer other terms, add the file again under another name "
            f"('tds dataset add {name}-v2 FILE --key …') and publish that with the new offer"
        )
    if isinstance(offers, dict):
        offers = [offers]
    if not isinstance(offers, list) or not offers:
        raise Refused("offers: expected an offer object or a list of them")
    offers, local_limits = [dict(raw) if isinstance(raw, dict) else raw for raw in offers], []
    ks, actions = [], set()
    for i, raw in enumerate(offers):
        local_limits.append(_offer_limits(ctx, i, raw))
        try:
            policy = parse_offer(raw).policy
        except OfferError as exc:
            raise Refused(f"offers[{i}]: {exc}", kind="bad-offer") from exc
        actions |= set(policy.actions())
        ks += [k for action in policy.actions() if (k := policy.least(action, "resultSize")) is not None]
    body = {
        "dataset": {
            "name": dataset.name,
            "title": dataset.title,
            "description": dataset.description,
            "keywords": dataset.keywords,
            "sector": dataset.sector,
            "columns": [{k: c[k] for k in ("name", "type", "tags")} for c in dataset.columns],
            "key_column": dataset.key_column,
            "row_count": dataset.row_count,
            "profile": {
                **dataset.profile,
                "completeness": {c["name"]: c["completeness"] for c in dataset.columns},
                "profiled_at": dataset.created_at.isoformat(),
            },
            "classification": dataset.classification,
            "pi_level": dataset.pi_level,
            "jurisdiction": dataset.jurisdiction,
        },
        "offers": offers,
        # synthetic rows for trying scripts on: no real key, row or value rarer than k
        "mock": mock_sample(Path(dataset.path), dataset.columns, dataset.key_column, max([MOCK_K, *ks])),
    }
    if "script" in actions:
        if not ctx.runs_scripts:
            raise Refused(
                f"offers: this connector's sandbox is {ctx.backend.name}, which does not contain a script's "
                "file access; reviewed scripts run only on bwrap or docker (sandbox_backend in the node's "
                "config; `tds sandbox check` says which work here)",
                kind="bad-offer",
            )
        # what a consumer's script may import, and the versions it will run with
        body["dataset"]["profile"]["script_runtime"] = script.runtime()
    try:
        entry = ctx.space.publish(body)
    except RemoteError as exc:
        raise Refused(
            f"the space refused the entry: {exc.problem.get('detail', exc)}",
            status=exc.status if exc.status in (403, 409, 422) else 502,
            kind=exc.problem.get("type", "").rsplit("/", 1)[-1] or "space",
            rule=exc.problem.get("rule"),
        ) from exc
    write_file(mock_path(dataset), body["mock"].encode("utf-8"), mode=0o600, replace=True)
    with ctx.db.transaction() as session:
        stored = session.get(Dataset, name)
        assert stored is not None
        stored.catalog_id = entry["id"]
        stored.catalog_status = entry["status"]
        # the sandbox limits stay with the provider: the space lists what it was sent
        stored.offers = [
            {**offer, **({"sandbox_limits": limits} if limits else {})}
            for offer, limits in zip(entry["offers"], local_limits, strict=True)
        ]
    return entry


def mock_path(dataset: Dataset) -> Path:
    """Where the connector keeps the mock sample it published (reviewed scripts' trial runs)."""
    return Path(dataset.path).with_suffix(".mock.csv")


def warm_up(ctx: Connector) -> None:
    """Pre-start one worker per published dataset (and its offers' limits) that homomorphic jobs
    may use, so that the first such job does not wait for a sandbox (sandbox/warm.py); read the
    identifying values of datasets offered to scripts, which their outputs are checked against."""
    for dataset in list_all(ctx):
        if dataset.catalog_id is None:
            continue
        for offer in dataset.offers:
            actions = {rule.get("action") for rule in offer.get("policy", {}).get("permission", [])}
            if actions & set(operations.names("he")):
                limits = ctx.settings.limits.tightened(offer.get("sandbox_limits", {}))
                ctx.warm.prepare(dataset.path, limits)
            if "script" in actions:
                identifiers.of(dataset)  # read once, before the first run's output is checked


def _offer_limits(ctx: Connector, index: int, offer: Any) -> dict[str, int]:
    """Pops an offer's ``sandbox_limits`` (kept locally, never sent) after checking that they
    only lower the connector's own limits."""
    if not isinstance(offer, dict) or "sandbox_limits" not in offer:
        return {}
    raw = offer.pop("sandbox_limits")
    if not isinstance(raw, dict):
        raise Refused(f'offers[{index}].sandbox_limits: expected an object such as {{"memory_mb": 512}}')
    try:
        ctx.settings.limits.tightened(raw)
    except ValueError as exc:
        raise Refused(f"offers[{index}].sandbox_limits: {exc}", kind="bad-offer") from exc
    return dict(raw)


def offer_limits(ctx: Connector, offer_id: str) -> Limits:
    """The sandbox limits for jobs under ``offer_id``: the connector's, lowered by the offer's."""
    found = _stored_offer(ctx, offer_id)
    overrides = found[1].get("sandbox_limits", {}) if found else {}
    return ctx.settings.limits.tightened(overrides)


def by_offer(ctx: Connector, offer_id: str) -> tuple[Dataset, dict[str, Any]] | None:
    """The dataset and the offer as the space lists it (without the local sandbox limits)."""
    found = _stored_offer(ctx, offer_id)
    if found is None:
        return None
    dataset, offer = found
    return dataset, {k: v for k, v in offer.items() if k != "sandbox_limits"}


def _stored_offer(ctx: Connector, offer_id: str) -> tuple[Dataset, dict[str, Any]] | None:
    for dataset in list_all(ctx):
        for offer in dataset.offers:
            if offer.get("id") == offer_id:
                return dataset, offer
    return None


def by_catalog_id(ctx: Connector, catalog_id: str) -> Dataset | None:
    with ctx.db.session() as session:
        return session.scalar(select(Dataset).where(Dataset.catalog_id == catalog_id))
