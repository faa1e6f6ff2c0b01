"""The review console in a real browser: Playwright driving the distribution's Chromium against a
provider's connector. A reviewer signs in, reads a second version's code and its diff against
the approved one, approves it, reads the output and releases it; the consumer holds the output.
A consumer's own token is refused; the page switches to Chinese; forms without a CSRF token and
pages with inline script are refused. A screenshot of each page goes to test-output/review/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.scripts import ended, review_state, script_world, submit
from tests.integration.test_scripts import GROUP_MEAN

COLUMNS = ["city", "n", "mean_income"]
SECOND = GROUP_MEAN.replace(".round(2)", ".round(1)")


@pytest.fixture(scope="module")
def shots() -> Path:
    root = Path(os.environ.get("TDS_TEST_OUTPUT", Path(__file__).parents[2] / "test-output"))
    folder = root / "review"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with script_world(tmp_path_factory.mktemp("review-console")) as made:
        first = submit(made, GROUP_MEAN, columns=COLUMNS, reason="第一版")
        review_state(made, first["id"], "review")
        made["reviews"].post(f"/api/reviews/{first['id']}/approve", {"runs": 1})
        review_state(made, first["id"], "release")
        made["reviews"].post(f"/api/reviews/{first['id']}/release", {})
        assert ended(made, first["id"])["status"] == "succeeded"
        made["token"] = made["reviews"].http.headers["Authorization"].removeprefix("Bearer ")
        yield made


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/review/")
    page.fill("#token", token)
    page.click("#sign-in")


def test_a_reviewer_reads_the_diff_approves_and_releases(
    world: dict[str, Any], browser: Any, shots: Path
) -> None:
    job = submit(world, SECOND, columns=COLUMNS, reason="保留一位小数")
    review_state(world, job["id"], "review")
    url = world["live"].connectors["bank"].config.url
    page = browser.new_page(locale="en-US")
    sign_in(page, url, world["token"])
    assert page.inner_text("#who") == "审核员王"
    page.click(f"text={job['id']}")
    assert page.inner_text("#state") == "code waits for review"
    assert page.inner_text("#reason") == "保留一位小数"
    diff = page.inner_text("#diff")
    assert '-table["mean_income"] = table["mean_income"].round(2)' in diff
    assert '+table["mean_income"] = table["mean_income"].round(1)' in diff
    assert "city,n,mean_income" in page.inner_text("#mock-output")
    page.screenshot(path=str(shots / "review-code.png"), full_page=True)
    page.fill("#runs", "2")
    page.fill("#approve-note", "只读聚合")
    page.click("#approve")
    review_state(world, job["id"], "release")
    page.reload()
    assert page.inner_text("#state") == "output waits for release"
    assert page.inner_text("#output").splitlines()[0] == "city,n,mean_income"
    page.screenshot(path=str(shots / "review-output.png"), full_page=True)
    page.click("#release")
    assert page.inner_text("#state") == "released"
    assert page.inner_text("#decided").startswith("Decided by 审核员王")
    done = ended(world, job["id"])
    assert done["status"] == "succeeded"
    rows = world["lab"].get(f"/api/jobs/{job['id']}/result")["rows"]
    assert len(rows) == 4 and all(len(r[2].split(".")[-1]) <= 1 for r in rows)
    page.click("#lang-zh")
    assert page.inner_text("#state") == "已放行"
    page.screenshot(path=str(shots / "review-zh.png"), full_page=True)
    page.close()


def test_a_consumers_token_is_refused_and_nothing_runs_without_a_form(
    world: dict[str, Any], browser: Any
) -> None:
    url = world["live"].connectors["bank"].config.url
    page = browser.new_page(locale="en-US")
    sign_in(page, url, world["live"].connectors["lab"].config.admin_token())
    assert page.inner_text("#login-error").startswith("Unknown or revoked token.")
    page.close()
    with httpx.Client(base_url=url, trust_env=False) as plain:
        shown = plain.get("/review/login")
        assert "script-src 'none'" in shown.headers["Content-Security-Policy"]
        assert "<script" not in shown.text
        assert plain.get("/review/").status_code == 302  # to the sign-in page
        forged = plain.post("/review/urn:uuid:x/approve", data={"runs": "1"})
        assert forged.status_code == 400 and "The form was not sent from this console" in forged.text
