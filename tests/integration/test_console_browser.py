"""The web console in a real browser: Playwright driving the distribution's Chromium against a
space, a bank and a telecom operator started here on loopback. Sign in as auditor and operator,
filter the log, see a record's proof verified by the browser (and a tampered one fail), admit a
participant through the queue, settle a month and download a statement whose sums add up,
switch to Chinese. A screenshot of each page goes to test-output/console/ (or
$TDS_TEST_OUTPUT/console/)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.documents import new_signed, sign_document
from contracts.usage import build_record
from node.signing import SignedClient
from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.conftest import USAGE_FIELDS, at, period
from tests.integration.helpers import cardinality_offer, phone_sets

Page = Any


@pytest.fixture(scope="module")
def shots() -> Path:
    root = Path(os.environ.get("TDS_TEST_OUTPUT", Path(__file__).parents[2] / "test-output"))
    folder = root / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


SETTLED = period(-2)  # the month the operator settles in the console


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A space with bank and telecom admitted, newco waiting; an agreement with three uses in
    October (signed by both, as their connectors would), two denied in November and one real
    PSI job; an auditor token."""
    root = tmp_path_factory.mktemp("console")
    phone_sets(root, "139", range(0, 40), range(20, 80))
    with cluster(root / "nodes") as live:
        bank_node = live.add_connector("bank", "郑州示例银行股份有限公司", 91)
        telecom_node = live.add_connector("telecom", "河南示例通信有限公司", 92)
        live.add_connector("newco", "新数科技有限公司", 93, admit=False, start=False)
        bank, telecom = bank_node.api(), telecom_node.api()
        entry = publish_dataset(
            telecom,
            "subs",
            root / "b.csv",
            {**cardinality_offer({"model": "per_job", "amount_fen": 1001}), "policy": {"permission": [
                {"action": "psi.cardinality", "constraint": [
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 100},
                    {"leftOperand": "consumerSetSize", "operator": "lteq", "rightOperand": 1000}]}]}},
            sector="telecom",
            title="移动用户 subscribers",
        )  # fmt: skip
        agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
        client = SignedClient("telecom", telecom_node.config.key())
        # the months before last and last, by the nodes' clock: the suite runs on any day
        for finished, outcome in (
            (at(SETTLED, 3), "succeeded"),
            (at(SETTLED, 4), "succeeded"),
            (at(SETTLED, 5), "succeeded"),
            (at(period(-1), 2), "denied"),
            (at(period(-1), 3), "denied"),
        ):
            fields = {**USAGE_FIELDS, "id": f"urn:uuid:{uuid.uuid4()}", "agreement": agreement}
            fields |= {
                "dataset": entry["id"],
                "started_at": finished,
                "finished_at": finished,
                "outcome": outcome,
            }
            fields |= {"fee_fen": 1001 if outcome == "succeeded" else 0}
            if outcome == "denied":
                fields["reason"] = "consumerSetSize lteq 10: got 40"
            signed = sign_document(
                new_signed(build_record(**fields), "telecom", telecom_node.config.key()),
                "bank",
                bank_node.config.key(),
            )
            client.send("POST", f"{live.space.url}/ledger/records", json=signed)
        client.close()
        job = run_job(bank, agreement, "psi.cardinality", root / "a.csv")
        assert job["status"] == "succeeded", job
        for api in (bank, telecom):
            api.post("/api/outbox/flush")
        operator = live.operator()
        auditor = operator.post("/admin/tokens", {"role": "auditor", "label": "审计员 Li"})["token"]
        records = operator.get("/ledger/records")["records"]
        assert len(records) == 6, records
        operator.close()
        bank.close()
        telecom.close()
        yield {
            "live": live,
            "url": live.space.url,
            "operator": live.space.config.admin_token(),
            "auditor": auditor,
            "agreement": agreement,
        }


def session(browser: Any, world: dict[str, Any], role: str, language: str = "en-US") -> Page:
    context = browser.new_context(locale=language, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.goto(f"{world['url']}/console/")
    assert "/console/login" in page.url
    page.fill("#token", world[role])
    page.click("#sign-in")
    page.wait_for_url(f"{world['url']}/console/")
    return page


def shot(page: Page, shots: Path, name: str) -> None:
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_auditor_filters_the_log_and_the_browser_verifies_a_proof(
    browser: Any, world: dict[str, Any], shots: Path
) -> None:
    page = session(browser, world, "auditor")
    assert page.inner_text("#who") == "auditor · 审计员 Li"
    assert page.inner_text("#log-size") == "6"
    assert page.eval_on_selector("#chart-usage", "img => img.complete && img.naturalWidth > 0")
    # the chart takes the page's width; with nothing settled, the fees are a sentence, not a chart
    width = page.evaluate(
        "[document.querySelector('#chart-usage').clientWidth, document.querySelector('main').clientWidth]"
    )
    assert width[0] >= 0.9 * width[1] - 40, width
    assert page.inner_text("#no-fees") == (
        "Nothing settled yet: the fees appear here once the operator settles a month."
    )
    assert page.locator("#chart-fees").count() == 0
    shot(page, shots, "overview-auditor")

    page.click("nav >> text=Usage log")
    page.select_option("#outcome", "denied")
    page.click("#apply")
    page.wait_for_url(re.compile(r".*outcome=denied.*"))
    outcomes = page.locator("#records tbody td.outcome").all_inner_texts()
    assert outcomes == ["denied", "denied"]
    reasons = page.locator("#records tbody td.reason")
    assert reasons.all_inner_texts() == ["consumerSetSize ≤ 10: got 40"] * 2  # the policy's words as signs
    assert reasons.first.get_attribute("title") == "consumerSetSize lteq 10: got 40"  # as signed
    shot(page, shots, "log-denied")

    page.click("#records tbody tr >> nth=0 >> a")
    page.wait_for_selector("#proof-result.ok")
    assert page.inner_text("#proof-result").startswith(
        "Verified in your browser: the record hashes to the leaf, the proof leads to the root of the "
        "signed tree head, and the space signed that head."
    )
    assert page.problems == []
    shot(page, shots, "record-verified")

    # an auditor's session may not change anything, even by sending the form itself
    page.goto(f"{world['url']}/console/queues")
    assert page.locator("#admit-newco").count() == 0
    assert "only the operator acts on them" in page.inner_text("main")
    token = page.get_attribute("input[name=csrf_token]", "value")
    status = page.evaluate(
        """async (token) => (await fetch('/console/participants/newco/admit',
             {method: 'POST', body: new URLSearchParams({csrf_token: token, confirmed: 'yes'})})).status""",
        token,
    )
    assert status == 403
    shot(page, shots, "queues-auditor")
    page.context.close()


def tamper(page: Page, change: Any) -> None:
    """Serve record pages with their proof data changed by ``change`` (a server that lies)."""

    def handle(route: Any) -> None:
        response = route.fetch()
        body = response.text()
        found = re.search(r'(<script type="application/json" id="proof-data">)(.*?)(</script>)', body, re.S)
        assert found
        data = json.loads(found[2])
        change(data)
        body = body.replace(found[2], json.dumps(data))
        route.fulfill(response=response, body=body)

    page.route(re.compile(r".*/console/log/\d+$"), handle)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "proof",
            lambda d: d["proof"].__setitem__(
                0, ("0" if d["proof"][0][0] != "0" else "1") + d["proof"][0][1:]
            ),
            "FAILED: the inclusion proof does not lead to the root of the signed tree head.",
        ),
        (
            "signature",
            lambda d: d.__setitem__("space_key", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "FAILED: the tree head is not signed by the space key shown.",
        ),
        (
            "leaf",
            lambda d: d.__setitem__("leaf_hash", "ab" * 32),
            "FAILED: the record does not hash to the leaf hash the space gives.",
        ),
    ],
)
def test_a_tampered_proof_fails_visibly(
    browser: Any, world: dict[str, Any], shots: Path, name: str, change: Any, message: str
) -> None:
    page = session(browser, world, "auditor")
    tamper(page, change)
    page.goto(f"{world['url']}/console/log/2")
    page.wait_for_selector("#proof-result.bad")
    assert page.inner_text("#proof-result") == message
    shot(page, shots, f"record-tampered-{name}")
    page.context.close()


def test_operator_admits_through_the_queue_settles_and_downloads_a_statement(
    browser: Any, world: dict[str, Any], shots: Path
) -> None:
    page = session(browser, world, "operator")
    page.goto(f"{world['url']}/console/queues")
    shot(page, shots, "queues-operator")
    # a destructive action looks it: red on white, unlike Admit's blue
    colours = [
        page.eval_on_selector(f"#{b}", "b => getComputedStyle(b).color")
        for b in ("suspend-bank", "admit-newco")
    ]
    assert colours == ["rgb(198, 40, 40)", "rgb(255, 255, 255)"]
    # the menu offers the closed months since the space's first recorded use, none before it
    assert page.locator("#period option").all_inner_texts() == [period(-1), SETTLED]
    assert page.inner_text("#who") == "operator"  # the first token is labelled by its role, said once
    page.click("#admit-newco")
    assert (
        page.inner_text("#question") == "Admit 新数科技有限公司 (newco) and issue its membership credential?"
    )
    shot(page, shots, "confirm-admit")
    page.click("#confirm")
    page.wait_for_selector(".flash.done")
    assert page.inner_text(".flash.done") == "newco admitted."
    assert "newco" in page.inner_text("#admitted-participants")
    operator = world["live"].operator()
    assert operator.get("/participants/newco")["status"] == "admitted"

    page.select_option("#period", SETTLED)
    page.click("#settle")
    page.click("#confirm")
    page.wait_for_url(re.compile(rf".*/console/settlements/{SETTLED}$"))
    assert page.inner_text("#fees") == "CN¥30.03"
    shot(page, shots, "settlement")
    page.click("#statements >> text=telecom")
    with page.expect_download() as download:
        page.click("#download-csv")
    lines = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    amounts = [int(line["amount_fen"]) for line in lines if line["role"] != "net"]
    (net,) = [int(line["amount_fen"]) for line in lines if line["role"] == "net"]
    assert sum(amounts) == net == 3003 - 150  # three uses at 1001 fen, 5 % commission
    assert page.inner_text("#net") == "CN¥28.53"
    shot(page, shots, "statement")
    actions = operator.get("/admin/actions")["actions"]
    assert [(a["action"], a["target"]) for a in actions[:2]] == [("settle", SETTLED), ("admit", "newco")]
    operator.close()
    page.goto(f"{world['url']}/console/actions")
    shot(page, shots, "actions")
    page.goto(f"{world['url']}/console/settlements")
    assert page.eval_on_selector("#chart-index", "img => img.complete && img.naturalWidth > 0")
    shot(page, shots, "settlements")
    page.goto(f"{world['url']}/console/")
    assert page.eval_on_selector("#chart-fees", "img => img.complete && img.naturalWidth > 0")
    shot(page, shots, "overview-settled")
    page.goto(f"{world['url']}/console/agreements/{world['agreement']}")
    assert page.locator("#records tbody tr").count() == 6
    rules = page.locator("#rules tbody td:nth-child(2)").all_inner_texts()
    assert {"count ≤ 100", "consumerSetSize ≤ 1,000", "recipient = bank"} <= set(rules), rules
    assert not any("@value" in r or "lteq" in r for r in rules), rules
    assert page.locator("#records a.dataset").first.inner_text() == "移动用户 subscribers"
    shot(page, shots, "agreement")
    page.goto(f"{world['url']}/console/catalog")
    shot(page, shots, "catalog")
    assert page.problems == []
    page.context.close()


def test_switching_to_chinese(browser: Any, world: dict[str, Any], shots: Path) -> None:
    page = session(browser, world, "auditor")
    assert page.inner_text("nav").split()[:2] == ["Overview", "Usage"]
    page.click("#lang-zh")
    page.wait_for_selector("a.lang.chosen#lang-zh")
    assert page.locator("nav a").all_inner_texts()[:3] == ["总览", "使用日志", "合约"]
    assert page.get_attribute("html", "lang") == "zh-CN"
    chart = page.request.get(world["url"] + page.get_attribute("#chart-usage", "src"))
    assert "每日使用次数（UTC），按结果" in chart.text() and "拒绝" in chart.text()
    assert "（今天）" in chart.text()  # the last bar is today's, and says so
    shot(page, shots, "overview-zh")
    page.goto(f"{world['url']}/console/log")
    assert page.locator("#records thead th").all_inner_texts()[:4] == ["序号", "完成时间", "操作", "结果"]
    # at 1280 px no label or short value of a table breaks inside a word (成/功, 使用/方)
    for cells in ("#records thead th", "#records td.outcome", "#records td.party", "#records td.when"):
        heights = page.locator(cells).evaluate_all("cs => cs.map(c => c.getBoundingClientRect().height)")
        line = page.locator(cells).first.evaluate("c => parseFloat(getComputedStyle(c).lineHeight)")
        assert max(heights) < 2 * line + 12, (cells, heights, line)
    shot(page, shots, "log-zh")
    page.goto(f"{world['url']}/console/catalog")
    assert "一般数据 / " in page.inner_text("#catalog")
    shot(page, shots, "catalog-zh")
    page.goto(f"{world['url']}/console/agreements/{world['agreement']}")
    shot(page, shots, "agreement-zh")
    page.goto(f"{world['url']}/console/settlements")
    assert "¥30.03" in page.inner_text("#periods") and "CN¥" not in page.inner_text("#periods")
    page.goto(f"{world['url']}/console/log/2")
    page.wait_for_selector("#proof-result.ok")
    assert page.inner_text("#proof-result").startswith("已在您的浏览器中校验")
    shot(page, shots, "record-zh")
    page.context.close()
