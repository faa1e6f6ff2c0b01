"""The space as a connector sees it: signed calls, and peers' keys checked against their
membership credentials (signed by the space key pinned at registration), briefly cached."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from typing import Any
from urllib.parse import quote

from contracts.documents import verify_document
from contracts.errors import ContractError, RequestSignatureError
from node.models import utcnow
from node.signing import RemoteError, SignedClient
from policies import export_list
from policies.errors import RuleSetError
from policies.export_list import ExportRule


class SpaceClient:
    def __init__(self, url: str, client: SignedClient, space_public_key: str, cache_s: float) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.space_public_key = space_public_key
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._exports: tuple[float, tuple[ExportRule, ...]] | None = None
        self._lock = threading.Lock()

    def _get(self, path: str, **params: Any) -> Any:
        return self.client.send("GET", self.url + path, params={k: v for k, v in params.items() if v}).json()

    def _post(self, path: str, body: Any) -> Any:
        return self.client.send("POST", self.url + path, json=body).json()

    # --- participants ---------------------------------------------------------------------
    def participant(self, pid: str, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(pid)
        if hit and not fresh and now - hit[0] < self.cache_s:
            return hit[1]
        info = self._get(f"/participants/{quote(pid)}")
        with self._lock:
            self._cache[pid] = (now, info)
        return info

    def check_member(self, info: dict[str, Any], now: dt.datetime) -> None:
        """Raise RequestSignatureError unless ``info`` is an admitted member whose credential,
        signed by the pinned space key, binds its current public key and has not expired."""
        pid = info.get("id")
        if info.get("status") != "admitted":
            raise RequestSignatureError(f"participant {pid} is {info.get('status')}, not admitted")
        credential = info.get("credential") or {}
        try:
            verify_document(credential, {"space"}, lambda _: self.space_public_key)
        except ContractError as exc:
            raise RequestSignatureError(f"membership credential of {pid}: {exc}") from exc
        document = credential["document"]
        if document.get("participant") != pid or document.get("public_key") != info.get("public_key"):
            raise RequestSignatureError(f"membership credential does not bind {pid}'s key")
        expires = dt.datetime.fromisoformat(str(document.get("expires_at")).replace("Z", "+00:00"))
        if now >= expires:
            raise RequestSignatureError(f"membership credential of {pid} expired at {expires.isoformat()}")

    def export_list(self) -> tuple[ExportRule, ...]:
        """The space's export list, checked on every job (connectors.guard), cached as peers are;
        a space that keeps none (404, from before the list) has no rule."""
        now = time.monotonic()
        with self._lock:
            hit = self._exports
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        try:
            rules = export_list.parse_rules(self._get("/export-list"))
        except RemoteError as exc:
            if exc.status != 404:
                raise
            rules = ()
        except RuleSetError as exc:
            raise RemoteError(
                self.url + "/export-list", 502, {"title": "Bad export list", "detail": str(exc)}
            ) from exc
        with self._lock:
            self._exports = (now, rules)
        return rules

    def renew(self, pid: str) -> dict[str, Any]:
        """This connector's new membership credential (the space signs it; its view of us)."""
        info = dict(self._post(f"/participants/{quote(pid)}/renewal", {}))
        with self._lock:
            self._cache[pid] = (time.monotonic(), info)
        return info

    def public_key_of(self, pid: str) -> str | None:
        """For verifying a peer's signed request: its key if it is a member in good standing."""
        try:
            info = self.participant(pid)
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise RequestSignatureError(f"cannot check {pid} with the space: {exc}") from exc
        self.check_member(info, utcnow())
        return str(info["public_key"])

    def member(self, pid: str) -> dict[str, Any]:
        info = self.participant(pid)
        self.check_member(info, utcnow())
        return info

    # --- catalog, agreements, ledger ------------------------------------------------------
    def publish(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post("/catalog", body)

    def search(self, **params: Any) -> dict[str, Any]:
        return self._get("/catalog", **params)

    def entry(self, entry_id: str) -> dict[str, Any]:
        return self._get(f"/catalog/{entry_id}")

    def mock(self, entry_id: str) -> str:
        """An entry's mock sample, CSV text."""
        return str(self.client.send("GET", f"{self.url}/catalog/{entry_id}/mock.csv").text)

    def offer(self, offer_id: str) -> dict[str, Any]:
        return self._get(f"/catalog/offers/{offer_id}")

    def record_agreement(self, signed: dict[str, Any]) -> dict[str, Any]:
        return self._post("/agreements", signed)

    def agreement(self, agreement_id: str) -> dict[str, Any]:
        """The space's record of an agreement, its state included; never cached."""
        return dict(self._get(f"/agreements/{quote(agreement_id, safe=':')}"))

    def terminate_agreement(self, agreement_id: str, reason: str) -> dict[str, Any]:
        return self._post(f"/agreements/{agreement_id}/termination", {"reason": reason})

    def append_record(self, signed: dict[str, Any]) -> dict[str, Any]:
        return self._post("/ledger/records", signed)

    def open_aggregation(
        self, job: str, agreements: list[str], context: bytes, fingerprint: str, size: int
    ) -> Any:
        body = {"job": job, "agreements": agreements, "context": base64.b64encode(context).decode(),
                "fingerprint": fingerprint, "size": size}  # fmt: skip
        return self._post("/aggregations", body)

    def contribute(self, job: str, body: dict[str, Any]) -> Any:
        return self._post(f"/aggregations/{job}/contributions", body)

    def aggregation_providers(self, job: str) -> int:
        """How many distinct providers other than the consumer the aggregation holds."""
        return int(self._get(f"/aggregations/{job}/providers")["providers"])

    def aggregation(self, job: str) -> dict[str, Any]:
        return dict(self._get(f"/aggregations/{job}"))

    def append_batch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self._post("/ledger/batch", {"records": records})["receipts"])
