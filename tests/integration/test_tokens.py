"""Token lifecycle through the command line against real nodes: tokens are listed by id (never
shown again), revoked — an operator act at the space — and a data directory's own token is
rotated without a moment without one; the last operator or admin token cannot be revoked."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from node.tokens import token_id
from tds.local import cluster


def tds(data_dir: Path, *args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "--json", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


def status_with(url: str, token: str) -> int:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, trust_env=False).status_code


def test_tokens_are_listed_revoked_and_rotated(tmp_path: Path) -> None:
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 92)
        space_dir, bank_dir = live.space.config.path, bank.config.path
        first = live.space.config.admin_token()
        code, issued, _ = tds(space_dir, "space", "token", "--role", "auditor", "--label", "alice")
        assert code == 0
        auditor = issued["token"]
        assert status_with(f"{live.space.url}/admin/tokens", auditor) == 200
        code, found, _ = tds(space_dir, "space", "token", "list")
        listed = [(t["id"], t["role"], t["label"], t["revoked"]) for t in found["tokens"]]
        assert (token_id(auditor), "auditor", "alice", False) in listed
        assert [t for t in listed if t[1] == "operator"] == [(token_id(first), "operator", "operator", False)]
        assert auditor not in json.dumps(found) and first not in json.dumps(found)
        code, revoked, _ = tds(space_dir, "space", "token", "revoke", token_id(auditor))
        assert (code, revoked["id"], revoked["revoked"]) == (0, token_id(auditor), True)
        assert status_with(f"{live.space.url}/admin/tokens", auditor) == 401
        code, _, stderr = tds(space_dir, "space", "token", "revoke", token_id(auditor))
        assert code == 1 and f"token {token_id(auditor)} is already revoked" in stderr
        code, _, stderr = tds(space_dir, "space", "token", "revoke", token_id(first))
        assert code == 1
        assert (
            f"token {token_id(first)} is the last operator token: issue another operator token first"
            in stderr
        )
        code, _, stderr = tds(space_dir, "space", "token", "revoke", "xyz")
        assert code == 1 and "token id: expected the 12 hex digits token list shows, got 'xyz'" in stderr
        code, rotated, _ = tds(space_dir, "space", "token", "rotate")
        now = live.space.config.admin_token()
        assert code == 0 and rotated == {"old": token_id(first), "new": token_id(now)} and now != first
        assert stat.S_IMODE((space_dir / "admin.token").stat().st_mode) == 0o600
        assert status_with(f"{live.space.url}/admin/tokens", first) == 401
        actions = httpx.get(
            f"{live.space.url}/admin/actions", headers={"Authorization": f"Bearer {now}"}, trust_env=False
        ).json()["actions"]
        assert sum(1 for a in actions if a["action"] == "revoke-token") == 2  # alice's, then the rotated one
        # a connector's: a reviewer's token revoked, its own admin token rotated
        admin = bank.config.admin_token()
        code, issued, _ = tds(bank_dir, "connector", "token", "--role", "reviewer", "--label", "bob")
        reviewer = issued["token"]
        code, found, _ = tds(bank_dir, "connector", "token", "list")
        assert sorted((t["role"], t["label"]) for t in found["tokens"]) == [
            ("admin", "administrator"),
            ("reviewer", "bob"),
        ]
        assert tds(bank_dir, "connector", "token", "revoke", token_id(reviewer))[0] == 0
        assert status_with(f"{bank.url}/api/reviews", reviewer) == 401
        code, _, stderr = tds(bank_dir, "connector", "token", "revoke", token_id(admin))
        assert code == 1 and "is the last admin token" in stderr
        assert tds(bank_dir, "connector", "token", "rotate")[0] == 0
        assert status_with(f"{bank.url}/api/status", admin) == 401
        assert status_with(f"{bank.url}/api/status", bank.config.admin_token()) == 200
