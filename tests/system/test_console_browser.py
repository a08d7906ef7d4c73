"""The web console in a real browser: Debian's Chromium driven by Playwright against a real
server process on 127.0.0.1 with the demo data set. Each role sees only its menu; an agent is
refused; a visit reassigned by form leaves the old phone at its next pull; a stale edit
shows the conflict; a flag is resolved; a disclosure report opens; a post without the CSRF
token is refused; the language choice is remembered.

CONSOLE_SCREENSHOTS=<folder> also saves a screenshot of each main page there (that is how
docs/console/*.png are made)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from loadtest.server_process import PASSWORD
from sync.client import HttpTransport
from tests.system.console_browser import chromium, chromium_available, console_server, sign_in

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="Chromium is not installed (apt-get install -y chromium)"
)
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Phone:
    """An agent's phone speaking the sync protocol over HTTP (login, pull, push)."""

    def __init__(self, base: str, username: str) -> None:
        self.http = HttpTransport(f"{base}/api/v1")
        self.device = f"phone-{username}"
        answer = self.http.request(
            "POST",
            "/auth/login",
            json={"username": username, "password": PASSWORD, "device_id": self.device},
        )
        assert answer.status == 200, answer.body
        self.user_id = answer.body["user"]["id"]
        self.headers = {
            "Authorization": f"Bearer {answer.body['access_token']}",
            "X-Device-Id": self.device,
        }
        self.cursor: str | None = None

    def pull(self) -> dict:
        params = {"cursor": self.cursor} if self.cursor else None
        answer = self.http.request("GET", "/sync/pull", headers=self.headers, params=params)
        assert answer.status == 200, answer.body
        self.cursor = answer.body["cursor"]
        return answer.body

    def push_report(self, visit_id: int, **body: str) -> dict:
        """A report that met the borrower with no badge shown first: flagged for review
        (`body` adds to or changes the report's fields)."""
        now = datetime.now(UTC)
        record = {
            "id": str(uuid.uuid4()),
            "kind": "visit_report",
            "visit_id": visit_id,
            "device_seq": 1,
            "recorded_at": _iso(now),
            "body": {
                "arrived_at": _iso(now - timedelta(minutes=20)),
                "departed_at": _iso(now - timedelta(minutes=5)),
                "outcome": "met_borrower",
                "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 10},
                **body,
            },
        }
        body = {"device_time": _iso(now), "records": [record]}
        answer = self.http.request("POST", "/sync/push", headers=self.headers, json=body)
        assert answer.status == 200, answer.body
        return answer.body["outcomes"][0]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    with console_server(tmp_path_factory.mktemp("console"), agents=3, visits_per_agent=4) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def context(browser):
    # 1366 x 768: the laptop the dispatchers have.
    made = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB")
    yield made
    made.close()


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)


def _open(page, endpoint: str) -> None:
    """Follow the menu item of this page and wait until that page has loaded: a check made
    right after the click would, under load, read the page the click left."""
    link = page.locator(f'#menu a[data-menu="{endpoint}"]')
    path = urlsplit(link.get_attribute("href") or "").path
    with page.expect_navigation(url=lambda url: urlsplit(url).path == path):
        link.click()


def _follow(page, target) -> None:
    """Click a link or a form's button and wait until the page it leads to has loaded: a
    check made right after the click would, under load, read the page the click left."""
    with page.expect_navigation():
        target.click()


def _menu(page) -> list[str]:
    return page.eval_on_selector_all("#menu a", "links => links.map(a => a.dataset.menu)")


@pytest.mark.parametrize(
    ("username", "menu"),
    [
        (
            "dispatcher01",
            [
                "console.board",
                "console.replan",
                "console.assignment_proposal",
                "console.promises",
                "console.flags",
                "console.register",
            ],
        ),
        (
            "privacy01",
            [
                "console.ledger",
                "console.disclosures",
                "console.anomalies",
                "console.history",
                "console.retention_status",
                "console.evidence",
            ],
        ),
        ("admin01", ["console.ledger"]),
    ],
)
def test_each_role_sees_only_its_menu(base, context, username, menu):
    page = context.new_page()
    if username == "dispatcher01":
        page.goto(f"{base}/console/sign-in")
        _shot(page, "sign-in")
    sign_in(page, base, username)
    assert page.url == f"{base}/console/"
    assert _menu(page) == menu
    cookie = next(c for c in context.cookies() if c["name"] == "doorstep_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"


def test_an_agent_is_refused(base, context):
    page = context.new_page()
    sign_in(page, base, "agent01")
    assert page.locator("#sign-in-error").inner_text().startswith("Field agents use the phone app")
    page.goto(f"{base}/console/board")  # no session was opened
    assert page.url.startswith(f"{base}/console/sign-in")


def _board_visit(page, phone_user_id: int) -> int:
    """One of this agent's planned visits on the board (its row's id)."""
    row = page.locator(f'section[aria-labelledby="agent-{phone_user_id}"] tr[id^="visit-"]').first
    return int(row.get_attribute("id").removeprefix("visit-"))


def _other_agent(page, not_this: int) -> str:
    ids = page.eval_on_selector_all("#agent-list option", "options => options.map(o => o.value)")
    return next(i for i in ids if i != str(not_this))


def test_reassign_by_form_and_the_phone_purges_the_card(base, context):
    phone = Phone(base, "agent01")
    first = phone.pull()
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board?agent={phone.user_id}")
    visit = _board_visit(page, phone.user_id)
    assert visit in [v["id"] for v in first["upserts"]]
    _shot(page, "day-board")
    page.get_by_label(f"Reassign visit {visit} to agent id").fill(_other_agent(page, phone.user_id))
    page.locator(f"#visit-{visit} button").click()
    assert f"Visit {visit} reassigned." in page.locator(".notice.success").inner_text()
    after = phone.pull()
    assert [(p["visit_id"], p["reason"]) for p in after["purges"]] == [(visit, "reassigned")]


def test_the_route_map_is_drawn_from_coordinates(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board")
    _follow(page, page.get_by_role("link", name="Route map").first)
    assert page.locator("#route-map").is_visible()
    assert page.locator("#route-map g.stop").count() == page.locator("#route-stops li").count()
    _shot(page, "route-map")


def test_a_stale_edit_shows_the_conflict(base, context):
    phone = Phone(base, "agent02")
    mine = context.new_page()
    theirs = context.new_page()
    sign_in(mine, base, "dispatcher01")
    mine.goto(f"{base}/console/board?agent={phone.user_id}")
    theirs.goto(f"{base}/console/board?agent={phone.user_id}")  # another tab, same versions
    visit = _board_visit(mine, phone.user_id)
    other = _other_agent(mine, phone.user_id)
    theirs.get_by_label(f"Reassign visit {visit} to agent id").fill(other)
    theirs.locator(f"#visit-{visit} button").click()
    assert theirs.locator(".notice.success").is_visible()
    mine.get_by_label(f"Reassign visit {visit} to agent id").fill(str(phone.user_id))
    with mine.expect_response(lambda r: r.request.method == "POST") as answer:
        mine.locator(f"#visit-{visit} button").click()
    assert answer.value.status == 409
    problem = mine.locator("#board-problem")
    assert "was changed by someone else" in problem.inner_text()
    assert mine.locator(f"#visit-{visit}.problem").count() == 1  # the row is marked
    _shot(mine, "conflict")


def test_the_board_opens_one_agent_at_a_time(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board")
    assert page.locator('tr[id^="visit-"]').count() == 0  # counts only
    _shot(page, "day-board-counts")
    _follow(page, page.locator("a.open-agent").first)
    assert page.locator('tr[id^="visit-"]').count() > 0


def test_reassign_by_dragging_a_visit_onto_another_agent(base, context):
    phone = Phone(base, "agent03")
    phone.pull()
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board?agent={phone.user_id}")
    visit = _board_visit(page, phone.user_id)
    target = _other_agent(page, phone.user_id)
    page.drag_and_drop(f"#visit-{visit}", f'section[data-agent="{target}"] h2')
    assert f"Visit {visit} reassigned." in page.locator(".notice.success").inner_text()
    assert errors == []  # the script ran under the page's CSP
    after = phone.pull()
    assert [(p["visit_id"], p["reason"]) for p in after["purges"]] == [(visit, "reassigned")]


def test_propose_a_route_and_save_the_order(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board")
    _follow(page, page.get_by_role("link", name="Route map").nth(1))
    _follow(page, page.locator("#propose-route"))
    assert page.locator("#proposal-note").is_visible()
    _shot(page, "route-proposal")
    _follow(page, page.locator("#save-order"))
    assert "The new order of the day is saved." in page.locator(".notice.success").inner_text()
    assert page.locator("#reorder").is_visible()


def test_the_assignment_proposal_and_the_promises_worklist(base, context):
    phone = Phone(base, "agent02")
    visit = phone.pull()["upserts"][0]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    phone.push_report(
        visit["id"],
        outcome="promise_to_pay",
        promise_amount="500.00",
        promise_date=tomorrow.isoformat(),
    )
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    _open(page, "console.assignment_proposal")
    assert page.locator("#assignment").is_visible()
    _shot(page, "assignment")
    _open(page, "console.promises")
    assert page.locator("#promises").is_visible()
    later = tomorrow + timedelta(days=10)  # judged ten days on, the promise is broken
    page.get_by_label("Day").fill(later.isoformat())
    page.get_by_role("button", name="Filter").click()
    # The table is on the page before the filter too: wait for the filtered page, not the
    # table, or under load the old page's table is read.
    page.wait_for_url(lambda url: f"day={later.isoformat()}" in url)
    assert visit["case_external_id"] in page.locator("#promises").inner_text()
    _shot(page, "promises")


def test_the_privacy_officers_audit_pages(base, context):
    phone = Phone(base, "agent02")
    phone.pull()  # cards served: something in the agent's history
    page = context.new_page()
    sign_in(page, base, "privacy01")
    _open(page, "console.anomalies")
    assert page.locator("#anomalies").is_visible()
    _shot(page, "anomalies")
    _open(page, "console.history")
    page.get_by_label("User id").fill(str(phone.user_id))
    _follow(page, page.get_by_role("button", name="Open the history"))
    assert "GET /api/v1/sync/pull" in page.locator("#history").inner_text()
    _shot(page, "history")
    _open(page, "console.retention_status")
    assert page.locator("#retention-rules tbody tr").count() >= 1
    _shot(page, "retention")


def test_build_an_evidence_pack(base, context):
    page = context.new_page()
    sign_in(page, base, "privacy01")
    _open(page, "console.evidence")
    page.get_by_label("Case id").fill("1")
    page.get_by_label("Legal matter").fill("Court file 2026/114")
    with page.expect_download() as download:
        page.get_by_role("button", name="Build and download").click()
    assert download.value.suggested_filename.startswith("evidence-case-1-")
    page.goto(f"{base}/console/evidence")
    assert "evidence-case-1-" in page.locator("#evidence-packs").inner_text()
    _shot(page, "evidence")


def test_resolve_a_flag(base, context):
    phone = Phone(base, "agent03")
    visit = phone.pull()["upserts"][0]["id"]
    outcome = phone.push_report(visit)
    assert outcome["status"] == "flagged", outcome
    record, code = outcome["record_id"], outcome["flags"][0]["code"]
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/flags?status=open")
    _shot(page, "flag-queue")
    _follow(page, page.locator(f'a[href="/console/flags/{record}/{code}"]'))
    page.get_by_label("Disposition").select_option("justified")
    page.get_by_label("Comment (required)").fill("Badge shown; the app was offline")
    _shot(page, "flag-review")
    _follow(page, page.get_by_role("button", name="Resolve"))
    assert page.locator("#flag-status").inner_text() == "resolved"
    assert "Badge shown; the app was offline" in page.inner_text("main")
    page.locator('main a[href^="/console/cases/"]').first.click()  # the flagged case
    # The click waits only for the navigation to commit; count() does not wait at all.
    page.wait_for_load_state()
    page.locator("#timeline").wait_for(state="attached")
    assert page.locator("#timeline").count() == 1
    _shot(page, "case")


def test_the_register_and_its_csv(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/register")
    _follow(page, page.get_by_role("button", name="Show"))  # empty filters: told to choose
    today = page.evaluate("() => new Date().toISOString().slice(0, 10)")
    page.goto(f"{base}/console/register?since={today}&until={today}")
    if page.locator("#register tbody tr").count() <= 1:  # the demo day is Shanghai's
        page.goto(f"{base}/console/register?agent_id=2")
    _shot(page, "register")
    with page.expect_download() as download:
        page.locator("#register-csv").click()
    assert download.value.suggested_filename == "visit-register.csv"


def test_open_a_disclosure_report(base, context):
    phone = Phone(base, "agent01")
    borrower = next(v["borrower"]["borrower_id"] for v in phone.pull()["upserts"] if v["borrower"])
    page = context.new_page()
    sign_in(page, base, "privacy01")
    page.goto(f"{base}/console/ledger")
    _follow(page, page.get_by_role("button", name="Verify the ledger"))
    assert page.locator("#verify-report").inner_text().startswith("The chain is intact")
    page.get_by_label("Reason (optional)").fill("before the audit")
    _follow(page, page.get_by_role("button", name="Sign the ledger head now"))
    assert "Checkpoint" in page.locator(".notice.success").inner_text()
    _shot(page, "ledger")
    _follow(page, page.get_by_role("link", name="Disclosure report"))
    page.get_by_label("Borrower id").fill(str(borrower))
    _follow(page, page.get_by_role("button", name="Open the report"))
    report = page.locator("#disclosure-report")
    assert "GET /api/v1/sync/pull" in report.inner_text()
    _shot(page, "disclosure-report")


def test_a_post_without_the_csrf_token_is_refused(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    # The browser's own cookies, a form body with everything but the token.
    answer = context.request.post(
        f"{base}/console/visits/1/reassign", form={"agent_id": "2", "version": "1"}
    )
    assert answer.status == 400 and "csrf_failed" in answer.text()
    page.goto(f"{base}/console/board")
    assert page.locator("h1").inner_text().startswith("Day board")  # still signed in


def test_the_language_is_remembered_after_signing_out(base, context):
    page = context.new_page()
    sign_in(page, base, "dispatcher01")
    page.goto(f"{base}/console/board")
    page.get_by_label("Language").select_option("zh_Hans")
    _follow(page, page.get_by_role("button", name="Switch"))
    assert page.locator("h1").inner_text().startswith("派单看板")
    _shot(page, "day-board-zh")
    _follow(page, page.get_by_role("button", name="退出"))
    assert page.get_by_role("button", name="登录").is_visible()
    page.keyboard.press("Tab")  # the skip link comes first: the page is keyboard-usable
    assert page.evaluate("() => document.activeElement.className") == "skip"
