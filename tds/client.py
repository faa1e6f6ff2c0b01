"""The CLI's client for its own node's API (bearer token from the node's data directory)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from node.config import NodeConfig
from tds.errors import ApiError


class NodeAPI:
    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )

    @classmethod
    def of(cls, config: NodeConfig) -> NodeAPI:
        return cls(config.url, config.admin_token())

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(
                method, path, json=json, params={k: v for k, v in (params or {}).items() if v is not None}
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}; is the node running ('tds … serve')?") from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:300]}
            # the message is for a person; the status stays in .status (and in --json's output)
            detail = problem.get("detail") or problem.get("title") or response.reason_phrase
            raise ApiError(str(detail), response.status_code, problem)
        if response.headers.get("content-type", "").startswith("text/"):
            return response.text  # a CSV download (a mock sample)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        return self.call("POST", path, json=json if json is not None else {})

    def wait_for_job(self, job_id: str, timeout: float) -> Any:
        """The job once it has ended (or as it is at ``timeout``): the connector holds each
        request up to 30 s and answers the moment the job ends, so nothing polls."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            job = self.get(f"/api/jobs/{job_id}", wait=round(max(0.0, min(30.0, left)), 3))
            if job["status"] != "running" or left <= 0:
                return job

    def wait_for(self, path: str, done: Any, timeout: float, interval: float = 0.2) -> Any:
        """Poll ``path`` until ``done(body)`` is true; return the last body."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(path)
            if done(body) or time.monotonic() > deadline:
                return body
            time.sleep(interval)
