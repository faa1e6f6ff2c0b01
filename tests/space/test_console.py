"""The web console through Flask's test client, on SQLite and PostgreSQL: who may see and do
what, CSRF, confirmation and the log of operator actions, filters and keyset pagination, the
proof data a record page hands the browser, headers, and both languages.
(tests/integration/test_console_browser.py drives the same pages in a real browser.)"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contracts import merkle
from contracts.canonical import canonical_bytes
from node import clock
from node.config import NodeConfig
from node.db import Database
from node.models import utcnow
from node.tokens import token_id
from policies.negative_list import parse_rules
from space import agreements, catalog, operator, registry
from space.app import create_app
from space.models import CatalogEntry, OperatorAction, Participant, Settlement, Token
from space.settings import SpaceSettings
from space.setup import DEFAULT_NEGATIVE_LIST
from tests.integration.helpers import CODES
from tests.space.conftest import fields
from tests.space.test_catalog import BODY, OFFER
from tests.space.test_settlement import NOW, SPACE, agreement, market, use  # noqa: F401  (fixtures)

CONSOLE_POSTS_EXEMPT = {"/console/login", "/console/logout"}  # sessions, not the space's state


@pytest.fixture
def space(market: Database, db_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:  # noqa: F811
    """A space with an agreement, uses in October (settled) and November, a participant waiting
    for admission, an entry waiting for review, and one token per role."""
    first = agreement(market, {"model": "per_job", "amount_fen": 5000})
    for day in (3, 4):
        use(market, first, f"2026-10-0{day}T10:00:00Z", 5000)
    use(market, first, "2026-11-20T10:00:00Z", 0, outcome="denied")
    use(market, first, "2026-11-21T10:00:00Z", 0, outcome="failed")
    now = utcnow()
    with market.transaction() as session:
        registry.register(session, fields("newco", "A" * 43, CODES[3]))
        body = {"dataset": {**BODY["dataset"], "name": "labs", "title": "lab results", "sector": "health"}}
        body["offers"] = [OFFER]  # health data waits for the operator's review (NL-102)
        entry = catalog.publish(
            session,
            registry.get(session, "telecom"),
            body,
            parse_rules(DEFAULT_NEGATIVE_LIST),
            SpaceSettings(),
        )
        assert entry.status == "pending_review"
        operator.settle(session, "setup", "2026-10", SPACE, 500, NOW)
        tokens = {
            role: operator.issue_token(session, "setup", role, f"{role} person", participant, now)
            for role, participant in (("operator", None), ("auditor", None), ("participant", "bank"))
        }
    config = NodeConfig(role="space", id="space", url="http://space.test", db=db_url, data_dir=str(tmp_path))
    app = create_app(config, db=market, key=SPACE)
    yield {"app": app, "db": market, "tokens": tokens, "agreement": first, "entry": entry.id}


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found[1]


def signed_in(app: Flask, token: str) -> FlaskClient:
    client = app.test_client()
    form = client.get("/console/login").get_data(as_text=True)
    answer = client.post("/console/login", data={"token": token, "csrf_token": csrf(form)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def state(db: Database) -> dict[str, Any]:
    """Everything a console action could change."""
    with db.session() as session:
        return {
            "participants": dict(session.execute(select(Participant.id, Participant.status)).all()),
            "entries": dict(session.execute(select(CatalogEntry.id, CatalogEntry.status)).all()),
            "settlements": sorted(session.scalars(select(Settlement.period))),
            "actions": session.scalar(select(func.count()).select_from(OperatorAction)),
            "tokens": session.scalar(select(func.count()).select_from(Token)),
            "revoked": session.scalar(select(func.count()).select_from(Token).where(Token.revoked.is_(True))),
        }


def console_posts(app: Flask, space: dict[str, Any]) -> list[str]:
    """Every state-changing console route, with real ids filled in."""
    values = {
        "pid": "newco",
        "decision": None,
        "entry_id": space["entry"],
        "token_id": token_id(space["tokens"]["auditor"]),
    }
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console") or "POST" not in (rule.methods or ()):
            continue
        if rule.rule in CONSOLE_POSTS_EXEMPT:
            continue
        decisions = {
            "/console/participants/<pid>/<decision>": ["admit", "suspend"],
            "/console/reviews/<path:entry_id>/<decision>": ["approve", "reject"],
        }.get(rule.rule, [None])
        for decision in decisions:
            args = {k: (decision if k == "decision" else values[k]) for k in rule.arguments}
            urls.append(rule.build(args)[1])  # type: ignore[index]
    return urls


def test_every_state_changing_route_refuses_an_auditor_and_a_participant(space: dict[str, Any]) -> None:
    app = space["app"]
    urls = console_posts(app, space)
    assert sorted(urls) == sorted(
        [
            "/console/participants/newco/admit",
            "/console/participants/newco/suspend",
            f"/console/reviews/{space['entry']}/approve",
            f"/console/reviews/{space['entry']}/reject",
            "/console/settlements",
            f"/console/tokens/{token_id(space['tokens']['auditor'])}/revoke",
        ]
    )
    before = state(space["db"])
    for role in ("auditor", "participant"):
        client = signed_in(app, space["tokens"][role])
        token = csrf(client.get("/console/log").get_data(as_text=True))
        for url in urls:
            form = {"csrf_token": token, "confirmed": "yes", "period": "2026-09", "note": "no"}
            answer = client.post(url, data=form)
            assert answer.status_code == 403, (role, url)
            said = {
                "auditor": "Auditors read everything and change nothing.",
                "participant": "A participant reads its own records, agreements and statements; "
                "only the operator changes the space.",
            }[role]
            assert said in answer.get_data(as_text=True) and ("Auditors" in said) == (role == "auditor")
    assert state(space["db"]) == before
    # and the JSON API refuses an auditor's token as well
    api = app.test_client()
    headers = {"Authorization": f"Bearer {space['tokens']['auditor']}"}
    for url in ("/admin/participants/newco/admit", f"/admin/reviews/{space['entry']}/approve"):
        assert api.post(url, headers=headers, json={}).status_code == 403
    assert api.post("/admin/settlements", headers=headers, json={"period": "2026-09"}).status_code == 403
    assert state(space["db"]) == before


def test_pages_need_a_session_and_a_bad_token_gets_none(space: dict[str, Any]) -> None:
    client = space["app"].test_client()
    for path in ("/console/", "/console/log?outcome=denied", "/console/queues", "/console/log/0"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/console/login?next=/console/")
    form = client.get("/console/login").get_data(as_text=True)
    refused = client.post("/console/login", data={"token": "tds_not-a-token", "csrf_token": csrf(form)})
    assert refused.status_code == 401
    assert "Unknown or revoked token" in refused.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
    assert (
        client.post("/console/participants/newco/admit", data={"csrf_token": csrf(form)}).status_code == 401
    )


def test_a_revoked_token_ends_its_sessions(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["auditor"])
    assert client.get("/console/").status_code == 200
    with space["db"].transaction() as session:
        for row in session.scalars(select(Token).where(Token.role == "auditor")):
            row.revoked = True
    assert client.get("/console/").status_code == 302


def test_forms_without_the_csrf_token_change_nothing(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["operator"])
    before = state(space["db"])
    for form in ({"confirmed": "yes"}, {"confirmed": "yes", "csrf_token": "forged"}):
        answer = client.post("/console/participants/newco/admit", data=form)
        assert answer.status_code == 400
        assert "Reload the page and try again" in answer.get_data(as_text=True)
    other = space["app"].test_client()  # another browser's token is no good in this session
    stolen = csrf(other.get("/console/login").get_data(as_text=True))
    assert client.post("/console/participants/newco/admit", data={"csrf_token": stolen}).status_code == 400
    assert state(space["db"]) == before


def test_the_operator_revokes_a_token_after_confirming_and_the_action_is_logged(
    space: dict[str, Any],
) -> None:
    client = signed_in(space["app"], space["tokens"]["operator"])
    page = client.get("/console/queues").get_data(as_text=True)
    auditor = token_id(space["tokens"]["auditor"])
    assert f'id="revoke-{auditor}"' in page and space["tokens"]["auditor"] not in page
    first = client.post(f"/console/tokens/{auditor}/revoke", data={"csrf_token": csrf(page)})
    assert f"Revoke token {auditor}? Whoever holds it can no longer sign in" in first.get_data(as_text=True)
    assert state(space["db"])["revoked"] == 0  # the first click does nothing
    done = client.post(
        f"/console/tokens/{auditor}/revoke",
        data={"csrf_token": csrf(first.get_data(as_text=True)), "confirmed": "yes"},
    )
    assert done.status_code == 302 and state(space["db"])["revoked"] == 1
    page = client.get("/console/queues").get_data(as_text=True)
    assert f"Token {auditor} revoked." in page and f'id="revoke-{auditor}"' not in page
    assert "revoked a token" in client.get("/console/actions").get_data(as_text=True)
    login = space["app"].test_client()
    form = csrf(login.get("/console/login").get_data(as_text=True))
    assert (
        login.post(
            "/console/login", data={"token": space["tokens"]["auditor"], "csrf_token": form}
        ).status_code
        != 302
    )
    again = client.post(
        f"/console/tokens/{auditor}/revoke", data={"csrf_token": csrf(page), "confirmed": "yes"}
    )
    assert again.status_code == 409 and f"token {auditor} is already revoked" in again.get_data(as_text=True)


def test_the_operator_admits_after_confirming_and_the_action_is_logged(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["operator"])
    page = client.get("/console/queues").get_data(as_text=True)
    assert 'id="admit-newco"' in page
    first = client.post("/console/participants/newco/admit", data={"csrf_token": csrf(page)})
    assert first.status_code == 200
    assert "Admit newco Ltd (newco) and issue its membership credential?" in first.get_data(as_text=True)
    assert state(space["db"])["participants"]["newco"] == "pending"  # the first click does nothing
    done = client.post(
        "/console/participants/newco/admit",
        data={"csrf_token": csrf(first.get_data(as_text=True)), "confirmed": "yes"},
    )
    assert done.status_code == 302
    assert state(space["db"])["participants"]["newco"] == "admitted"
    assert "newco admitted." in client.get("/console/queues").get_data(as_text=True)
    again = client.post(
        "/console/participants/newco/admit", data={"csrf_token": csrf(page), "confirmed": "yes"}
    )
    assert again.status_code == 409
    assert "newco is already admitted; suspend it first to admit it again" in again.get_data(as_text=True)
    with space["db"].session() as session:
        last = session.scalars(select(OperatorAction).order_by(OperatorAction.id.desc())).first()
        assert last is not None
        assert (last.actor, last.action, last.target, last.detail["was"]) == (
            "operator person",
            "admit",
            "newco",
            "pending",
        )
    actions = client.get("/console/actions").get_data(as_text=True)
    assert "admitted a participant" in actions and "operator person" in actions
    api = space["app"].test_client()
    listed = api.get("/admin/actions", headers={"Authorization": f"Bearer {space['tokens']['auditor']}"})
    assert [a["action"] for a in listed.get_json()["actions"]][:2] == ["admit", "issue-token"]


def test_refusing_an_entry_needs_a_note_and_settling_a_bad_period_is_refused(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["operator"])
    token = csrf(client.get("/console/queues").get_data(as_text=True))
    before = state(space["db"])
    bare = client.post(
        f"/console/reviews/{space['entry']}/reject", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert bare.status_code == 400
    assert "say why the entry is refused" in bare.get_data(as_text=True)
    for period, status, message in (
        ("2026-13", 400, "period: expected YYYY-MM (e.g. 2026-11), got &#39;2026-13&#39;"),
        ("2099-01", 422, "period 2099-01 is not over until 2099-02-01T00:00:00Z"),
    ):
        answer = client.post(
            "/console/settlements", data={"csrf_token": token, "period": period, "confirmed": "yes"}
        )
        assert answer.status_code == status
        assert message in answer.get_data(as_text=True)
    assert state(space["db"]) == before
    done = client.post(
        f"/console/reviews/{space['entry']}/reject",
        data={"csrf_token": token, "confirmed": "yes", "note": "no consent records"},
    )
    assert done.status_code == 302
    assert state(space["db"])["entries"][space["entry"]] == "rejected"


def rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/console/log/(\d+)">', page)]


def test_log_filters_and_keyset_pages(space: dict[str, Any]) -> None:
    for n in range(120):
        outcome = "denied" if n % 3 == 0 else "succeeded"
        use(
            space["db"],
            space["agreement"],
            f"2026-11-{1 + n % 20:02d}T0{n % 10}:00:{n % 60:02d}Z",
            5000,  # the agreed price; the sizes tell the records apart
            n + 1,
            outcome,
        )
    client = signed_in(space["app"], space["tokens"]["auditor"])
    size = 124
    first = client.get("/console/log").get_data(as_text=True)
    assert rows(first) == list(range(size - 1, size - 51, -1))
    following = re.search(r'href="(/console/log\?before=\d+)" id="older"', first)
    assert following and following[1] == f"/console/log?before={size - 50}"
    second = client.get(following[1]).get_data(as_text=True)
    assert rows(second) == list(range(size - 51, size - 101, -1))
    last = client.get(f"/console/log?before={size - 100}").get_data(as_text=True)
    assert rows(last) == list(range(size - 101, -1, -1))
    assert 'id="older"' not in last
    denied = client.get("/console/log?outcome=denied").get_data(as_text=True)
    expected = [*[4 + n for n in range(120) if n % 3 == 0][::-1], 2]
    assert rows(denied) == expected[:50]
    assert (
        client.get("/console/log?participant=nobody").get_data(as_text=True).count("No records match.") == 1
    )
    by_party = rows(
        client.get("/console/log?participant=bank&operation=psi.cardinality").get_data(as_text=True)
    )
    assert by_party == list(range(size - 1, size - 51, -1))
    assert rows(
        client.get(f"/console/log?agreement={space['agreement']}&before=2").get_data(as_text=True)
    ) == [1, 0]
    for query, message in (
        ("outcome=maybe", "outcome: expected one of succeeded, withheld, denied, failed, got maybe"),
        ("before=x1", "before: expected a whole number, got x1"),
        ("since=yesterday", "since: expected a date and time like 2026-11-27T08:00, got yesterday"),
    ):
        answer = client.get(f"/console/log?{query}")
        assert answer.status_code == 400
        assert message in answer.get_data(as_text=True)


def test_a_page_searches_a_bounded_window_and_says_where_it_stopped(
    space: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from space.console import queries

    for n in range(8):
        use(space["db"], space["agreement"], f"2026-11-0{1 + n}T01:00:00Z", 5000, n + 1)  # indexes 4–11
    monkeypatch.setattr(queries, "WINDOW", 5)
    client = signed_in(space["app"], space["tokens"]["auditor"])
    first = client.get("/console/log?outcome=denied").get_data(as_text=True)
    assert rows(first) == []  # indexes 7–11 hold no denied record
    assert "Searched the log down to record 7; a page looks through at most 50,000 records." in first
    assert 'href="/console/log?outcome=denied&amp;before=7" id="older">Search older records →' in first
    second = client.get("/console/log?outcome=denied&before=7").get_data(as_text=True)
    assert rows(second) == [2]  # indexes 2–6
    assert 'before=2" id="older"' in second
    last = client.get("/console/log?outcome=denied&before=2").get_data(as_text=True)
    assert rows(last) == [] and 'id="older"' not in last and "Searched the log" not in last
    full = client.get("/console/log?before=12").get_data(as_text=True)
    assert rows(full) == [11, 10, 9, 8, 7]  # (in use the window, 50 000, is far larger than a page)
    assert 'href="/console/log?before=7" id="older">Search older records →' in full


def test_time_filters_bound_the_append_time(space: dict[str, Any]) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from space.models import LedgerEntry

    with space["db"].session() as session:
        appended = sorted(session.scalars(select(LedgerEntry.appended_at)))
    shanghai = ZoneInfo("Asia/Shanghai")  # the form's times are in the console's time zone

    def local(moment: dt.datetime, minutes: int) -> str:
        return (moment + dt.timedelta(minutes=minutes)).astimezone(shanghai).strftime("%Y-%m-%dT%H:%M")

    client = signed_in(space["app"], space["tokens"]["auditor"])
    page = lambda q: rows(client.get(f"/console/log?{q}").get_data(as_text=True))  # noqa: E731
    assert page(f"since={local(appended[0], -1)}") == [3, 2, 1, 0]
    assert page(f"since={local(appended[-1], 1)}") == []
    assert page(f"until={local(appended[-1], 1)}") == [3, 2, 1, 0]
    assert page(f"until={local(appended[0], -1)}") == []
    assert page(f"since={local(appended[0], -1)}&until={local(appended[-1], 1)}&outcome=failed") == [3]


def test_a_participant_sees_its_own_records_and_statements_only(space: dict[str, Any]) -> None:
    use(space["db"], space["agreement"], "2026-11-22T10:00:00Z", 5000, 7)  # telecom and bank
    client = signed_in(space["app"], space["tokens"]["participant"])  # bank
    assert rows(client.get("/console/log?participant=telecom").get_data(as_text=True)) == [4, 3, 2, 1, 0]
    assert client.get("/console/queues").status_code == 403
    assert client.get("/console/actions").status_code == 403
    assert client.get("/console/charts/usage.svg").status_code == 403
    assert client.get("/console/settlements/2026-10/bank").status_code == 200
    assert client.get("/console/settlements/2026-10/telecom").status_code == 404
    assert client.get("/console/settlements/2026-10/telecom.csv").status_code == 404
    period = client.get("/console/settlements/2026-10").get_data(as_text=True)
    assert (
        "/console/settlements/2026-10/bank" in period and "/console/settlements/2026-10/telecom" not in period
    )


def test_a_record_page_hands_the_browser_a_proof_that_verifies(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["auditor"])
    page = client.get("/console/log/1").get_data(as_text=True)
    data = json.loads(
        re.search(r'<script type="application/json" id="proof-data">(.*?)</script>', page, re.S)[1]
    )
    leaf = base64.b64decode(data["leaf"])
    head = json.loads(base64.b64decode(data["head"]))
    assert merkle.leaf_hash(leaf).hex() == data["leaf_hash"]
    assert json.loads(leaf)["document"]["id"] == data["record_id"]
    path = [bytes.fromhex(h) for h in data["proof"]]
    merkle.verify_inclusion(
        1, head["tree_size"], merkle.leaf_hash(leaf), path, bytes.fromhex(head["root_hash"])
    )
    assert canonical_bytes(head) == base64.b64decode(data["head"])
    assert data["space_key"] == SPACE.public_key
    assert page.count(">valid<") == 2  # telecom's and bank's signatures, checked by the space too
    assert '<script src="/console/static/proof.js">' in page
    assert client.get("/console/log/99").status_code == 404


def test_headers_and_cookies(space: dict[str, Any]) -> None:
    client = space["app"].test_client()
    page = client.get("/console/login")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    tls = space["app"].test_client()
    tls_page = tls.get("/console/login", base_url="https://space.test")
    assert "Secure" in tls_page.headers["Set-Cookie"]
    assert "<script>" not in page.get_data(as_text=True)  # no inline script anywhere
    nasty = client.get("/console/login?next=https://evil.example/")
    assert "evil.example" not in nasty.get_data(as_text=True).split('name="next" value="')[1].split('"')[0]
    auditor = signed_in(space["app"], space["tokens"]["auditor"])
    chart = auditor.get("/console/charts/usage.svg")
    assert chart.mimetype == "image/svg+xml"
    assert b"<script" not in chart.data and b"http://kozea" not in chart.data
    assert "script" not in chart.headers["Content-Security-Policy"]


def test_the_usage_chart_of_a_quiet_month_is_empty_not_an_error(
    space: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture's uses lie in 2026-10 and 2026-11; a year on, the last 30 days hold none."""
    monkeypatch.setenv(clock.ENV, clock.offset_to(NOW + dt.timedelta(days=365)))
    chart = signed_in(space["app"], space["tokens"]["auditor"]).get("/console/charts/usage.svg")
    assert (chart.status_code, chart.mimetype) == (200, "image/svg+xml")
    assert b"No uses yet" in chart.data


def test_chinese_and_english(space: dict[str, Any]) -> None:
    client = signed_in(space["app"], space["tokens"]["auditor"])
    zh = client.get("/console/settlements/2026-10", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(
        as_text=True
    )
    assert "结算" in zh and "¥100.00" in zh and "每笔费用的分配" in zh
    en = client.get("/console/settlements/2026-10", headers={"Accept-Language": "en-US"}).get_data(
        as_text=True
    )
    assert "Split of each fee" in en and "CN¥100.00" in en
    switched = client.get("/console/lang/zh?next=/console/log")
    assert switched.status_code == 302 and switched.headers["Location"] == "/console/log"
    assert "使用日志" in client.get("/console/log", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert client.get("/console/lang/fr").status_code == 404


def test_agreements_and_catalog_pages(space: dict[str, Any]) -> None:
    second = agreement(
        space["db"], {"model": "per_row", "amount_fen": 3}, negotiated={"model": "per_row", "amount_fen": 2}
    )
    auditor = signed_in(space["app"], space["tokens"]["auditor"])
    listed = auditor.get("/console/agreements").get_data(as_text=True)
    assert listed.count('href="/console/agreements/urn:uuid:') == 2
    assert (
        "CN¥50.00 per job" in listed and "CN¥0.02 per row" in listed
    )  # the agreed price, not the listed one
    assert (
        auditor.get("/console/agreements?state=TERMINATED")
        .get_data(as_text=True)
        .count("/console/agreements/urn")
        == 0
    )
    assert (
        auditor.get("/console/agreements?participant=newco")
        .get_data(as_text=True)
        .count("/console/agreements/urn")
        == 0
    )
    page = auditor.get(f"/console/agreements/{space['agreement']}").get_data(as_text=True)
    assert "risk-control" in page and "psi.cardinality" in page and "no end" in page
    assert rows(page) == [3, 2, 1, 0]  # every attempt under it, newest first
    from contracts.keys import SigningKey

    with space["db"].transaction() as session:
        registry.register(
            session, fields("other", SigningKey.from_seed(bytes([9] * 32)).public_key, CODES[4])
        )
        session.flush()
        outsider = operator.issue_token(session, "setup", "participant", "", "other", utcnow())
    stranger = signed_in(space["app"], outsider)
    assert stranger.get(f"/console/agreements/{second}").status_code == 404
    assert stranger.get("/console/agreements").get_data(as_text=True).count("/console/agreements/urn") == 0
    assert stranger.get("/console/log/0").status_code == 404
    catalog_page = stranger.get("/console/catalog").get_data(as_text=True)
    assert "lab results" not in catalog_page  # held for review: not a stranger's to see
    full = auditor.get("/console/catalog?status=pending_review").get_data(as_text=True)
    assert "lab results" in full and "NL-102" in full


def test_the_provisional_settlement_page(space: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The open period as it would settle now, for every role, marked provisional; nothing is
    issued by looking at it."""
    monkeypatch.setenv(clock.ENV, clock.offset_to(NOW + dt.timedelta(days=2)))  # 2026-11-29
    use(space["db"], space["agreement"], "2026-11-22T10:00:00Z", 5000, 7)
    before = state(space["db"])
    auditor = signed_in(space["app"], space["tokens"]["auditor"])
    listed = auditor.get("/console/settlements").get_data(as_text=True)
    assert 'href="/console/settlements/preview"' in listed
    page = auditor.get("/console/settlements/preview").get_data(as_text=True)
    assert "Provisional settlement 2026-11" in page and 'id="provisional"' in page
    assert '<dd id="fees">CN¥50.00</dd>' in page
    assert [who for who in re.findall(r"<tr><td>([a-z]+)</td><td class=\"amount\">", page)] == [
        "bank", "space", "telecom"
    ]  # fmt: skip
    bank = signed_in(space["app"], space["tokens"]["participant"])
    own = bank.get("/console/settlements/2026-11/preview").get_data(as_text=True)
    assert re.findall(r"<tr><td>([a-z]+)</td><td class=\"amount\">", own) == ["bank"]
    assert 'id="fees"' not in own
    settled = auditor.get("/console/settlements/2026-10/preview")
    assert settled.status_code == 409
    assert "period 2026-10 is settled: read /settlements/2026-10, not a preview" in settled.get_data(
        as_text=True
    )
    assert state(space["db"]) == before


def test_rules_datasets_and_labels_read_at_a_glance(space: dict[str, Any]) -> None:
    from space.console.formatting import constraint_text, reason_text

    app = space["app"]
    with app.test_request_context("/console/", headers={"Accept-Language": "en"}):
        typed = {"@value": 10, "@type": "xsd:integer"}  # a typed literal, as agreements carry it
        assert (
            constraint_text({"leftOperand": "count", "operator": "lteq", "rightOperand": typed})
            == "count ≤ 10"
        )
        assert (
            constraint_text(
                {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["risk-control", "x"]}
            )
            == "purpose ∈ {risk-control, x}"
        )
        # a time in the console's zone (Asia/Shanghai by default): 16:00 UTC is midnight there
        until = {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-12-31T16:00:00Z"}
        assert constraint_text(until) == "dateTime < Jan 1, 2028, 12:00:00\u202fAM"  # CLDR: a narrow space
    with app.test_request_context("/console/", headers={"Accept-Language": "zh-CN"}):
        assert reason_text("completed") == "已完成"  # a connector's fixed reason, translated
        # a policy's: its template's words in Chinese, its operators as signs, its values as signed
        denied = (
            "psi.cardinality not permitted: count lteq 1: count is 2; "
            "purpose eq x: the request does not state purpose"
        )
        assert (
            reason_text(denied)
            == "不允许 psi.cardinality：count ≤ 1：count 为 2; purpose = x：请求未说明 purpose"
        )
        withheld = "result withheld: resultSize gteq 501 not met (the result is not told)"
        assert reason_text(withheld) == "结果已扣留：未满足 resultSize ≥ 501（不透露结果）"
        assert reason_text("isAnyOf the list") == "isAnyOf the list"  # no template, no operator: as it is
    auditor = signed_in(app, space["tokens"]["auditor"])
    with space["db"].session() as session:
        dataset = agreements.get(session, space["agreement"]).dataset_id
    shown = f'<a class="dataset" href="/console/catalog#{dataset}" title="{dataset}">subscribers</a>'
    for page in (
        "/console/log",
        "/console/agreements",
        f"/console/agreements/{space['agreement']}",
        "/console/log/0",
    ):
        assert shown in auditor.get(page).get_data(as_text=True), page  # the title, the id on hover
    assert "Settlement periods are calendar months in UTC." in auditor.get("/console/log").get_data(
        as_text=True
    )
    zh = {"Accept-Language": "zh-CN"}
    assert "（5000 分）" in auditor.get("/console/log/0", headers=zh).get_data(as_text=True)
    catalog_zh = auditor.get("/console/catalog", headers=zh).get_data(as_text=True)
    assert "一般数据 / 一般个人信息" in catalog_zh and f'<tr id="{dataset}">' in catalog_zh


def test_the_operator_is_offered_only_months_the_space_lived_and_suspending_looks_destructive(
    space: dict[str, Any],
) -> None:
    operator_page = signed_in(space["app"], space["tokens"]["operator"]).get("/console/queues")
    page = operator_page.get_data(as_text=True)
    offered = re.findall(r"<option>(\d{4}-\d\d)</option>", page)
    # the fixture's first use is on 2026-10-03 and 2026-10 is settled: from 2026-11 to last month
    today, expected = clock.now().date(), []
    year, month = today.year, today.month
    for _ in range(12):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        if (year, month) < (2026, 11):
            break
        expected.append(f"{year:04d}-{month:02d}")
    assert offered == expected
    assert re.search(r'<button type="submit" class="danger" id="suspend-\w+">Suspend</button>', page)


def test_an_index_without_points_says_why(market: Database, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    with market.transaction() as session:
        operator.settle(session, "setup", "2026-10", SPACE, 500, NOW)  # a month with no billed use
        token = operator.issue_token(session, "setup", "auditor", "", None, utcnow())
    config = NodeConfig(role="space", id="space", url="http://space.test", db=db_url, data_dir=str(tmp_path))
    page = signed_in(create_app(config, db=market, key=SPACE), token).get("/console/settlements")
    text = page.get_data(as_text=True)
    assert "No settled period has billed uses yet, so the index has no point yet." in text
    assert "The index starts with the first settled period." not in text
