"""The usage log: filtered, keyset-paginated pages and a record with its proof."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from flask import (
    current_app,
    g,
    render_template,
    request,
)
from flask_babel import gettext as _
from sqlalchemy import select

from contracts.canonical import canonical_bytes
from contracts.documents import verify_document
from contracts.errors import SignatureError
from contracts.treehead import SPACE_SIGNER
from space import ledger, tree
from space.console import queries
from space.console.views import (
    FIELDS,
    OPERATIONS,
    OUTCOMES,
    blueprint,
    db,
    int_arg,
    signed_in,
    tds,
)
from space.errors import NotFound, Refused
from space.models import LedgerEntry, Participant


# --- the usage log ---------------------------------------------------------------------------
def _moment(name: str) -> dt.datetime | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refused(
            _("%(name)s: expected a date and time like 2026-11-27T08:00, got %(text)s", name=name, text=text),
            status=400,
        ) from None
    if moment.tzinfo is None:  # a time typed into the form is in the console's time zone
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))
    return moment.astimezone(dt.UTC)


def _about(entry: LedgerEntry, document: dict[str, Any]) -> str:
    """What a countersignature, decision or script-step leaf says, in a line of the log's table."""
    if entry.kind == "script-step":
        return _(
            "script step of job %(job)s: %(step)s, code %(code)s",
            job=entry.subject,
            step=document.get("step"),
            code=str(document.get("code_sha256"))[:12],
        )
    if entry.kind == "countersignature":
        return _(
            "countersignature of record %(record)s by %(signer)s",
            record=entry.subject,
            signer=document.get("signer"),
        )
    return _(
        "operator's decision on record %(record)s: %(decision)s (%(reason)s)",
        record=entry.subject,
        decision=document.get("decision"),
        reason=document.get("reason"),
    )


def row_view(entry: LedgerEntry) -> dict[str, Any]:
    record = entry.signed["document"] if isinstance(entry.signed.get("document"), dict) else {}
    return {
        "kind": entry.kind,
        "seq": entry.seq,
        "record_id": entry.record_id,
        "appended_at": entry.appended_at,
        "finished_at": record.get("finished_at") or record.get("at"),  # a script step has its time
        "provider": entry.provider_id,
        "consumer": entry.consumer_id,
        "dataset": entry.dataset_id,
        "agreement": entry.agreement_id,
        "operation": entry.operation,
        "outcome": entry.outcome,
        "reason": record.get("reason", "") if entry.kind == "usage" else _about(entry, record),
        "fee_fen": entry.fee_fen,
    }


@blueprint.get("/log")
@signed_in()
def log() -> Any:
    outcome = request.args.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        raise Refused(
            _("outcome: expected one of %(allowed)s, got %(got)s", allowed=", ".join(OUTCOMES), got=outcome),
            status=400,
        )
    participant = request.args.get("participant", "").strip()
    if not g.user.reads_all:
        participant = g.user.participant or ""
    chosen = queries.LogFilter(
        participant=participant,
        dataset=request.args.get("dataset", "").strip(),
        agreement=request.args.get("agreement", "").strip(),
        operation=request.args.get("operation", "").strip(),
        outcome=outcome,
        since=_moment("since"),
        until=_moment("until"),
    )
    before = int_arg("before")
    with db().session() as session:
        page = queries.log_page(session, chosen, before)
        size = tree.head(session).size
    return render_template(
        "log.html",
        rows=[row_view(e) for e in page.rows],
        following=page.following,
        searched_to=page.searched_to,
        before=before,
        chosen=chosen,
        size=size,
        outcomes=OUTCOMES,
        operations=OPERATIONS,
        since=request.args.get("since", ""),
        until=request.args.get("until", ""),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@blueprint.get("/log/<int:seq>")
@signed_in()
def record(seq: int) -> Any:
    with db().session() as session:
        entry = session.get(LedgerEntry, seq)
        if entry is None or not g.user.sees(entry.provider_id, entry.consumer_id):
            raise NotFound(_("no record at index %(seq)s of the log", seq=seq))
        signed = entry.signed
        later = ledger.about(session, entry.record_id)
        # a countersignature leaf holds the consumer's signature over this record's document
        late = {
            str(leaf.signed["document"].get("signer")): (
                str(leaf.signed["document"].get("signature")),
                leaf.seq,
            )
            for leaf in later
            if leaf.kind == "countersignature"
        }
        decisions = [
            {"seq": leaf.seq, **leaf.signed["document"]} for leaf in later if leaf.kind == "decision"
        ]
        signers = [*signed["signatures"], *late]
        keys = {
            p.id: p.public_key
            for p in session.scalars(select(Participant).where(Participant.id.in_(signers)))
        }
        keys[SPACE_SIGNER] = tds("key").public_key
        head = tree.latest_head(session)
        proof = None
        if head is not None and head.size > seq:
            proof = {
                "record_id": entry.record_id,
                "leaf": _b64(canonical_bytes(signed)),
                "leaf_hash": entry.leaf_hash,
                "index": seq,
                "proof": tree.inclusion_proof(session, seq, head.size),
                "head": _b64(canonical_bytes(head.signed["document"])),
                "head_signature": head.signed["signatures"][SPACE_SIGNER],
                "space_key": tds("key").public_key,
            }
        head_doc = head.signed["document"] if head is not None else None
    signatures = []
    given: list[tuple[str, str, int | None]] = [(k, v, None) for k, v in signed["signatures"].items()]
    for signer, (value, seq_of) in late.items():
        given.append((signer, value, seq_of))
    for signer, value, late_leaf in given:
        one = {"document": signed["document"], "signatures": {signer: value}}
        try:
            verify_document(one, [signer], lambda s: keys.get(s) or "")
            ok = True
        except SignatureError:
            ok = False
        signatures.append(
            {"signer": signer, "value": value, "key": keys.get(signer, ""), "ok": ok, "late": late_leaf}
        )
    return render_template(
        "record.html",
        entry=row_view(entry),
        record=signed["document"],
        labels={k: str(v) for k, v in FIELDS.items()},
        signatures=signatures,
        decisions=decisions,
        proof=proof,
        head=head_doc,
    )
