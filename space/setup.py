"""Creating a space's data directory: key, config, database, operator token, negative list."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.keys import SigningKey
from node.config import KEY, TOKEN, NodeConfig, default_db, private_dir, private_files, write_file
from node.db import check_url, create_database
from space.models import Token
from space.web.common import EXPORT_LIST, NEGATIVE_LIST

MIGRATIONS = "space:migrations"

# The operator edits this file; the space reads it on every agreement, and each provider's
# connector on every job (policies/export_list.py).
DEFAULT_EXPORT_LIST = {
    "rules": [
        {
            "id": "EX-001",
            "reason": "important data (重要数据, GB/T 43697) stays in mainland China",
            "match": {"classification": ["important"]},
            "jurisdictions": ["CN"],
        },
        {
            "id": "EX-002",
            "reason": "sensitive personal information (敏感个人信息) stays in mainland China",
            "match": {"pi_level": ["sensitive"]},
            "jurisdictions": ["CN"],
            "scenarios": [
                {
                    "id": "EX-002-S1",
                    "jurisdictions": ["HK", "MO"],
                    "purposes": ["cross-border-payment"],
                    "condition": "each person's separate consent and a passed security assessment "
                    "(个人单独同意并通过安全评估)",
                }
            ],
        },
    ]
}

# The operator edits this file; the space reads it on every publish.
DEFAULT_NEGATIVE_LIST = {
    "rules": [
        {
            "id": "NL-001",
            "effect": "prohibit",
            "reason": "core data (核心数据, GB/T 43697) may not be traded",
            "match": {"classification": ["core"]},
        },
        {
            "id": "NL-002",
            "effect": "prohibit",
            "reason": "identity-card numbers as sensitive personal information may not be offered",
            "match": {"semantic_tags": ["id_card"], "pi_level": ["sensitive"]},
        },
        {
            "id": "NL-101",
            "effect": "restrict",
            "reason": "important data (重要数据) needs operator review before publication",
            "match": {"classification": ["important"]},
        },
        {
            "id": "NL-102",
            "effect": "restrict",
            "reason": "health data (医疗健康) needs operator review before publication",
            "match": {"sector": ["医疗健康", "health"]},
        },
        {
            "id": "NL-103",
            "effect": "restrict",
            "reason": "sensitive personal information needs operator review before publication",
            "match": {"pi_level": ["sensitive"]},
        },
    ]
}


def init_space(
    data_dir: Path, url: str, db_url: str | None, auto_admit: bool, dev: bool = False
) -> tuple[NodeConfig, str]:
    """Create the space's data directory; return its config and the operator token (shown once)."""
    private_dir(data_dir)
    config = NodeConfig(
        role="space",
        id="space",
        url=url.rstrip("/"),
        db=check_url(db_url or default_db(data_dir)),
        data_dir=str(data_dir.resolve()),
        options={"auto_admit": auto_admit, "dev_mode": dev},
    )
    SigningKey.generate().save(data_dir / KEY)
    write_file(
        data_dir / NEGATIVE_LIST,
        json.dumps(DEFAULT_NEGATIVE_LIST, ensure_ascii=False, indent=2).encode(),
        mode=0o600,
    )
    write_file(
        data_dir / EXPORT_LIST,
        json.dumps(DEFAULT_EXPORT_LIST, ensure_ascii=False, indent=2).encode(),
        mode=0o600,
    )
    token = create_database(config.db, MIGRATIONS, Token, "operator")
    write_file(data_dir / TOKEN, token.encode(), mode=0o600)
    config.save()
    private_files(data_dir)
    return config, token
