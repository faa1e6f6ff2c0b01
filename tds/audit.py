"""The auditor's side: read the log from a space (or an export file), keep what was seen, and
hand everything to the pure checks of :mod:`contracts.audit`.

Export files are JSON Lines: one ``{"kind": "space", ...}`` line, then ``participant``,
``head`` and ``record`` lines. The auditor's state (``audit-state.json`` in its state folder,
mode 0600) pins the space's public key on first use and keeps every head the auditor has seen,
so that a later run can tell whether the log it is shown still extends them.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from contracts.audit import Report, audit
from tds.client import NodeAPI
from tds.errors import ApiError, TdsError

EXPORT_FORMAT = "tds-audit-export/1"
STATE_FILE = "audit-state.json"
PAGE = 1000


@dataclass
class Bundle:
    """Everything an audit reads: from a live space or from an export."""

    space_url: str
    space_public_key: str
    participants: dict[str, str]
    heads: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)


def _pages(api: NodeAPI, path: str, key: str, position: str) -> Iterator[dict[str, Any]]:
    after = -1
    while True:
        page = api.get(path, after=after, limit=PAGE)[key]
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1][position]


def fetch(api: NodeAPI) -> Bundle:
    known = api.get("/.well-known/tds")
    participants = {p["id"]: p["public_key"] for p in api.get("/admin/participants")["participants"]}
    heads = [h["signed"] for h in _pages(api, "/ledger/heads", "heads", "tree_size")]
    records = [
        {k: r[k] for k in ("seq", "signed", "leaf_hash")}
        for r in _pages(api, "/ledger/records", "records", "seq")
    ]
    return Bundle(known["url"], known["public_key"], participants, heads, records)


def write_export(bundle: Bundle, out: IO[str]) -> int:
    lines = 0

    def line(value: dict[str, Any]) -> None:
        nonlocal lines
        out.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
        lines += 1

    line(
        {
            "kind": "space",
            "format": EXPORT_FORMAT,
            "url": bundle.space_url,
            "public_key": bundle.space_public_key,
        }
    )
    for pid, key in sorted(bundle.participants.items()):
        line({"kind": "participant", "id": pid, "public_key": key})
    for head in bundle.heads:
        line({"kind": "head", "signed": head})
    for record in bundle.records:
        line({"kind": "record", **record})
    return lines


def read_export(path: Path) -> Bundle:
    bundle: Bundle | None = None
    try:
        with path.open(encoding="utf-8") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    item = json.loads(raw)
                except ValueError as exc:
                    raise TdsError(f"{path}:{number}: not JSON ({exc})") from exc
                kind = item.pop("kind", None) if isinstance(item, dict) else None
                if number == 1:
                    if kind != "space" or item.get("format") != EXPORT_FORMAT:
                        raise TdsError(
                            f"{path}: not a {EXPORT_FORMAT} file (its first line must describe the space)"
                        )
                    bundle = Bundle(item["url"], item["public_key"], {}, [])
                elif bundle is not None and kind == "participant":
                    bundle.participants[item["id"]] = item["public_key"]
                elif bundle is not None and kind == "head":
                    bundle.heads.append(item["signed"])
                elif bundle is not None and kind == "record":
                    bundle.records.append(item)
                else:
                    raise TdsError(
                        f"{path}:{number}: unknown line kind {kind!r}; expected participant, head or record"
                    )
    except OSError as exc:
        raise TdsError(f"cannot read {path}: {exc.strerror}") from exc
    if bundle is None:
        raise TdsError(f"{path} is empty")
    return bundle


def read_receipts(path: Path) -> list[dict[str, Any]]:
    """Receipts a connector holds (``tds outbox receipts --out FILE``): {signed, receipt} lines."""
    try:
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise TdsError(f"cannot read receipts from {path}: {exc}") from exc


def default_state_dir() -> Path:
    """The user's state directory for tds (XDG Base Directory Specification: $XDG_STATE_HOME,
    default ~/.local/state), never the current one."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tds"


class State:
    """What this auditor has seen of one space, kept between runs."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        self.data: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text("utf-8"))
            except ValueError as exc:
                raise TdsError(f"{self.path} is damaged ({exc}); move it away to start afresh") from exc

    def pinned_key(self, space_url: str, presented: str) -> str:
        """The space's key as first seen; a different key presented later is refused."""
        spaces = self.data.setdefault("spaces", {})
        known = spaces.get(space_url, {}).get("public_key")
        if known is not None and known != presented:
            raise TdsError(
                f"the space at {space_url} now presents another public key than the one pinned in "
                f"{self.path}; if the operator really rotated it, check out of band, then remove that entry"
            )
        spaces.setdefault(space_url, {"public_key": presented, "seen": []})
        return presented

    def seen(self, space_url: str) -> list[dict[str, Any]]:
        return list(self.data.get("spaces", {}).get(space_url, {}).get("seen", []))

    def remember(self, space_url: str, head: dict[str, Any]) -> None:
        seen = self.data["spaces"][space_url]["seen"]
        if not seen or seen[-1] != head:
            seen.append(head)

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=1)
        os.replace(tmp, self.path)


def verify(
    bundle: Bundle,
    state: State,
    receipts: list[dict[str, Any]],
    proofs: dict[tuple[int, int], Any] | None = None,
) -> Report:
    key = state.pinned_key(bundle.space_url, bundle.space_public_key)
    report = audit(
        key,
        bundle.participants,
        bundle.records,
        bundle.heads,
        seen=state.seen(bundle.space_url),
        receipts=receipts,
        consistency_proofs=proofs,
    )
    if report.ok and report.latest is not None:
        state.remember(bundle.space_url, dict(report.latest.signed))
    return report


def consistency_proofs(api: NodeAPI, state: State, bundle: Bundle) -> dict[tuple[int, int], Any]:
    """The space's proofs from each head this auditor saw before to the next, and to today's."""
    sizes = sorted(
        {h["document"]["tree_size"] for h in state.seen(bundle.space_url)}
        | ({bundle.heads[-1]["document"]["tree_size"]} if bundle.heads else set())
    )
    proofs: dict[tuple[int, int], Any] = {}
    for old, new in itertools.pairwise(sizes):
        if old > 0:
            try:
                proofs[(old, new)] = api.get("/ledger/proof/consistency", first=old, second=new)["proof"]
            except ApiError as exc:
                proofs[(old, new)] = str(exc)  # reported as a problem: a log owes this proof
    return proofs
