"""The web console in a real browser (headless Chromium, driven by Playwright) against the
session's local stack: sign in, submit, watch a job finish without reloading, read its result,
cancel a scheduled job and a running one, see the API's validation message, survive an ended
session with the form kept, sign out; and sign in through a hosted login page with the
authorization-code flow and PKCE, against a stand-in login domain (``hosted_login.py``: moto has
no hosted UI). Screenshots of the main screens go to build/console/.

The browser is Debian's ``chromium`` package (``CHROMIUM_PATH``, else ``chromium`` on PATH):
Playwright's own browser download needs a host this project's machines cannot reach.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from jobs import actions
from tests.e2e import hosted_login
from tests.e2e.hosted_login import FakeHostedLogin
from tests.e2e.support import ROOT, User, wait_for
from tooling import console as console_mod
from tooling.local_stack import LocalStack

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [dev] extra")
expect = playwright_api.expect

SHOTS = ROOT / "build" / "console"
WAIT_MS = 30_000  # a job here finishes in a few seconds; this bounds a hang, it is no timing claim
# Every expectation here waits on the API through the local stack. Playwright's default of 5 s
# is a timing claim: on a loaded machine a new API environment's cold start alone took longer
# (a double-clicked submit "never reached the API" within it). The bound is a hang's, as above.
expect.set_options(timeout=WAIT_MS)


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium on this machine: `apt-get install -y --no-install-recommends chromium` (.ci/run does)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.problems = problems
    try:
        yield opened
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, user: User) -> None:
    page.get_by_label("User name or e-mail").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#job-action option[value=demo]")).to_have_count(1)


def fill_job(page: Any, name: str, context1: str = "hello", context2: str = "browser") -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Action").select_option("demo")
    page.get_by_label("Context 1").fill(context1)
    page.get_by_label("Context 2").fill(context2)


def row(page: Any, name: str) -> Any:
    return page.locator("#jobs-body tr", has_text=name)


def test_console_from_sign_in_to_sign_out(stack: LocalStack, make_user: Callable[[], User], page: Any) -> None:
    user = make_user()
    page.goto(stack.console_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in")

    # a wrong password: Cognito's own message, and still the sign-in screen
    page.get_by_label("User name or e-mail").fill(user.username)
    page.get_by_label("Password").fill("not-the-password-1!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("Incorrect username or password")

    sign_in(page, user)
    stored = json.dumps(page.evaluate("() => ({...sessionStorage})"))
    assert user.password not in stored and "refreshToken" in stored  # tokens kept, never the password

    # every control has a label a screen reader announces
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
             .filter(c => c.type !== 'hidden' && c.labels.length === 0 && !c.getAttribute('aria-label'))
             .map(c => c.id || c.name)"""
    )
    assert unlabelled == []
    # the action list comes from GET /actions, with each action's description
    page.get_by_label("Action").select_option("word-count")
    expect(page.locator("#job-action-help")).not_to_be_empty()
    expect(page.locator("#job-format option")).to_have_count(3)  # word-count produces text, json, csv

    # submit with a double click: one job; it reaches COMPLETE on screen without a reload
    fill_job(page, "console-demo")
    page.get_by_role("button", name="Submit job").dblclick()
    expect(page.locator("#submit-result")).to_contain_text("console-demo")
    expect(row(page, "console-demo")).to_have_count(1)
    expect(row(page, "console-demo").locator(".status")).to_have_text("COMPLETE", timeout=WAIT_MS)
    listed = [j for j in user.api.list_jobs().json() if j["name"] == "console-demo"]
    assert len(listed) == 1, listed
    expect(page.locator("#ratelimit")).to_contain_text("Submissions")
    shot(page, "jobs")

    # its detail: every field, the result previewed and downloadable
    row(page, "console-demo").get_by_role("button").click()
    expect(page.locator("#detail-title")).to_contain_text("COMPLETE")
    expect(page.locator("#detail-preview")).to_have_text("hello browser")
    expect(page.locator("#detail-fields dd[data-field=job_id]")).to_have_text(listed[0]["job_id"])
    expect(page.locator("#detail-fields dd[data-field=S3FileKey]")).to_contain_text(listed[0]["job_id"])
    download = page.locator("#detail-download")
    assert download.get_attribute("href").startswith(stack.backend.endpoint)
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)  # finished: nothing to cancel
    shot(page, "job")
    page.get_by_role("button", name="Back to the list").click()
    expect(page.locator("#detail-panel")).to_be_hidden()

    # a scheduled job can be cancelled
    fill_job(page, "console-later")
    page.get_by_label("After a delay").check()
    page.get_by_label("Delay in seconds").fill("600")
    page.get_by_role("button", name="Submit job").click()
    expect(row(page, "console-later").locator(".status")).to_have_text("SCHEDULED")
    row(page, "console-later").get_by_role("button").click()
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#detail-title")).to_contain_text("CANCELLED")
    expect(row(page, "console-later").locator(".status")).to_have_text("CANCELLED")
    page.get_by_role("button", name="Back to the list").click()
    page.get_by_label("Now").check()

    # a CSV file of jobs goes in as one batch (a quoted cell may hold a comma)
    page.get_by_text("Submit many jobs from a file").click()
    csv = 'name,action,context1,context2,format\nconsole-batch-1,demo,"a, b",c,\nconsole-batch-2,word-count,x y,y,csv\n'
    page.get_by_label("File of jobs").set_input_files(
        files=[{"name": "jobs.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    expect(page.locator("#batch-summary")).to_contain_text("2 job(s) read from jobs.csv")
    page.get_by_role("button", name="Submit the file's jobs").click()
    expect(page.locator("#batch-summary")).to_contain_text("2 of 2 job(s) submitted")
    expect(row(page, "console-batch-")).to_have_count(2)
    expect(row(page, "console-batch-1").locator(".status")).to_have_text("COMPLETE", timeout=WAIT_MS)

    # a validation error shows the API's message
    fill_job(page, "   ")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#submit-error")).to_contain_text("(empty_field)")
    expect(page.locator("#submit-error")).to_contain_text("name")
    shot(page, "validation-error")

    # an ended session (tokens refused, refresh refused) leads back to sign-in, keeping the form
    fill_job(page, "console-after-expiry", context1="kept", context2="values")
    page.evaluate(
        """() => { const s = JSON.parse(sessionStorage.getItem('jobs-console.session'));
                   s.idToken = 'expired'; s.refreshToken = 'revoked';
                   sessionStorage.setItem('jobs-console.session', JSON.stringify(s)); }"""
    )
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#signin-note")).to_contain_text("session has ended")
    shot(page, "session-ended")
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Context 1")).to_have_value("kept")
    page.get_by_role("button", name="Submit job").click()
    expect(row(page, "console-after-expiry")).to_have_count(1)

    # sign out: back to sign-in, the tokens forgotten
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('jobs-console.session')") is None
    assert page.problems == []  # no CSP violation, no script error


def test_console_time_to_first_jobs_and_a_phone_sized_screen(
    stack: LocalStack, make_user: Callable[[], User], browser: Any
) -> None:
    user = make_user()
    for n in range(3):
        user.api.submit(name=f"seen-{n}")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(stack.console_url)
        sign_in(page, user)
        expect(page.locator("#jobs-body tr")).to_have_count(3)
        # the file and header parsers, in the browser that runs them
        csv_text = 'a,b\r\n"x, y","say ""hi"""\n\n"multi\nline",2'
        parsed = page.evaluate(
            """async (csvText) => {
                 const batch = await import('./js/batch.js');
                 const api = await import('./js/api.js');
                 return {
                   csv: batch.parseCsv(csvText),
                   jobs: batch.parseJobsFile('j.json', '{"jobs": [{"name": "n"}]}'),
                   limit: api.parseRateLimit('"burst";r=19;t=1, "active";r=99'),
                 };
               }""",
            csv_text,
        )
        assert parsed["csv"] == [["a", "b"], ["x, y", 'say "hi"'], ["multi\nline", "2"]]
        assert parsed["jobs"] == [{"name": "n"}]
        assert parsed["limit"] == {"burst": {"r": 19, "t": 1}, "active": {"r": 99}}
        # page load to first jobs shown, with a session in this tab (what a returning user sees)
        page.reload()
        expect(page.locator("#jobs-body tr")).to_have_count(3)
        shown = float(page.evaluate("() => document.body.dataset.jobsShownMs"))
        print(f"\nconsole: page load to first jobs shown: {shown:.0f} ms (local stack, headless Chromium)")
        # nothing wider than the phone's screen but the table's own scroller
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        shot(page, "jobs-phone")
    finally:
        context.close()


# ------------------------------------------------------------------------------------------
# Sign-in through the pool's hosted login page: authorization code + PKCE
# ------------------------------------------------------------------------------------------


@pytest.fixture
def hosted(stack: LocalStack) -> Iterator[tuple[FakeHostedLogin, console_mod.ConsoleServer]]:
    """A fake hosted login domain (moto has none) and a console whose config.json names it."""
    fake = FakeHostedLogin(stack.client("cognito-idp"), stack.outputs["user_pool_client_id"]).start()
    backend = stack.backend.endpoint.rstrip("/")
    config = {
        **console_mod.console_config(stack.outputs, api_url=stack.api_url, cognito_endpoint=backend + "/"),
        "oauth_domain": fake.url,
        "oauth_scopes": ["openid", "email", "profile"],
    }
    server = console_mod.ConsoleServer(
        config, connect=[console_mod.origin_of(stack.api_url), console_mod.origin_of(backend)]
    ).start()
    fake.redirect_uri = server.url
    try:
        yield fake, server
    finally:
        server.stop()
        fake.stop()


def session_of(page: Any) -> dict[str, Any]:
    return json.loads(page.evaluate("() => sessionStorage.getItem('jobs-console.session')") or "null") or {}


def test_hosted_login_with_pkce_signs_in_refreshes_and_signs_out(
    stack: LocalStack,
    make_user: Callable[[], User],
    page: Any,
    hosted: tuple[FakeHostedLogin, console_mod.ConsoleServer],
) -> None:
    fake, server = hosted
    user = make_user()
    user.api.submit(name="seen-through-hosted-login")
    fake.username, fake.password = user.username, user.password
    # the CSP lets the page fetch from exactly the login domain (besides the API and Cognito)
    csp = requests.get(server.url, timeout=10).headers["Content-Security-Policy"]
    connect_src = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
    assert fake.url in connect_src
    cognito_calls: list[str] = []
    page.on(
        "request",
        lambda r: (
            cognito_calls.append(r.headers.get("x-amz-target", ""))
            if r.url.startswith(stack.backend.endpoint) and r.method == "POST"
            else None
        ),
    )
    page.goto(server.url)
    hosted_button = page.get_by_role("button", name="Sign in with the hosted login page")
    expect(hosted_button).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()  # the password form stays on offer
    shot(page, "sign-in-hosted")

    # a tampered code_verifier (changed on its way to the token endpoint) gets no tokens
    def tamper(route: Any) -> None:
        form = dict(urllib.parse.parse_qsl(route.request.post_data or ""))
        form["code_verifier"] = form["code_verifier"][::-1]
        route.continue_(post_data=urllib.parse.urlencode(form))

    page.route(f"{fake.url}/oauth2/token", tamper)
    hosted_button.click()
    expect(page.locator("#signin-error")).to_contain_text("invalid_grant")
    assert fake.grants() == ["authorization_code"] and fake.grants(400) == ["authorization_code"]
    assert session_of(page) == {}
    page.unroute(f"{fake.url}/oauth2/token")

    # an answer whose state is not the one this tab sent is refused in the page, never exchanged
    fake.tamper_state = True
    hosted_button.click()
    expect(page.locator("#signin-error")).to_contain_text("state mismatch")
    assert "code=" not in page.url and fake.grants() == ["authorization_code"]  # no second exchange
    fake.tamper_state = False
    # a code that arrives with no sign-in started in this tab, likewise
    page.goto(server.url + "?code=planted&state=anything")
    expect(page.locator("#signin-error")).to_contain_text("state mismatch")
    assert fake.grants() == ["authorization_code"]

    # the real thing: authorize (S256 challenge) -> back with a code -> exchanged with the verifier
    page.get_by_role("button", name="Sign in with the hosted login page").click()
    expect(row(page, "seen-through-hosted-login")).to_have_count(1)
    expect(page.locator("#user-name")).to_have_text(user.username)
    authorize = [c for c in fake.calls if c.path == "/oauth2/authorize"][-1]
    assert authorize.params["code_challenge_method"] == "S256" and authorize.params["scope"] == "openid email profile"
    assert fake.grants(200) == ["authorization_code"]
    exchange = [c for c in fake.calls if c.path == "/oauth2/token"][-1]
    assert hosted_login.s256(exchange.params["code_verifier"]) == authorize.params["code_challenge"]
    assert "code=" not in page.url and "state=" not in page.url  # the address bar is clean
    stored = json.dumps(page.evaluate("() => ({...sessionStorage})"))
    assert "jobs-console.pkce" not in stored and user.password not in stored  # verifier gone, no password
    assert session_of(page)["via"] == "hosted"
    # the page signs in and out through the login domain only, never Cognito's password API
    assert cognito_calls == []

    # an expiring session renews its tokens at the token endpoint (grant_type=refresh_token)
    page.evaluate(
        """() => { const s = JSON.parse(sessionStorage.getItem('jobs-console.session'));
                   s.expiresAt = 0; sessionStorage.setItem('jobs-console.session', JSON.stringify(s)); }"""
    )
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    wait_for(lambda: session_of(page).get("expiresAt", 0) > time.time(), 10, "the renewed session")
    assert fake.grants(200) == ["authorization_code", "refresh_token"]
    refresh_token = session_of(page)["refreshToken"]

    # sign out: the refresh token revoked, the login page's session left, the tokens forgotten
    # through the domain's /logout and back: wait for the console's document to load again (not
    # for a navigation to its URL, which the page's own history.replaceState on sign-out already
    # matches before it leaves for /logout)
    with page.expect_event("load"):
        page.get_by_role("button", name="Sign out").click()
    assert page.url.startswith(server.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert [c.status for c in fake.calls if c.path == "/logout"] == [302]
    assert refresh_token in fake.revoked
    assert page.evaluate("() => sessionStorage.length") == 0
    assert cognito_calls == [] and page.problems == []  # no CSP violation, no script error


# ------------------------------------------------------------------------------------------
# Cancelling a running job from its detail view
# ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("queue_drained")
def test_console_cancels_a_running_job_and_sees_it_cancelled(
    stack: LocalStack, make_user: Callable[[], User], page: Any
) -> None:
    # hash-chain asked for the most rounds it takes runs until it is stopped here (the e2e
    # worker's 5 s timeout would stop it at about 3.5 s; a cancel seen in time ends it sooner).
    user = make_user()
    page.goto(stack.console_url)
    sign_in(page, user)
    page.get_by_label("Name", exact=True).fill("console-running")
    page.get_by_label("Action").select_option("hash-chain")
    page.get_by_label("Context 1").fill("stop me")
    page.get_by_label("Context 2").fill(str(actions.HASH_CHAIN_MAX_ROUNDS))
    page.get_by_role("button", name="Submit job").click()
    row(page, "console-running").get_by_role("button").click()

    # the detail view follows the job by itself: PROCESSING, with its progress bar
    expect(page.locator("#detail-title")).to_contain_text("PROCESSING", timeout=WAIT_MS)
    expect(page.locator("#detail-progress")).to_be_visible(timeout=WAIT_MS)
    shot(page, "job-running")
    with page.expect_response(lambda r: r.request.method == "DELETE" and "/job" in r.url) as answered:
        page.get_by_role("button", name="Request cancel").click()
    assert answered.value.status == 202  # a running job: the cancel is requested, the worker stops it

    # CANCELLED on screen without a reload, in the detail view and in the table (the bound
    # covers a cancel that just missed the attempt's last progress write: the job's next
    # delivery, after the 31 s visibility timeout, then cancels it)
    expect(page.locator("#detail-title")).to_contain_text("CANCELLED", timeout=2 * WAIT_MS)
    expect(row(page, "console-running").locator(".status")).to_have_text("CANCELLED")
    expect(page.locator("#detail-fields dd[data-field=cancel_requested_at]")).not_to_be_empty()
    expect(page.get_by_role("button", name="Request cancel")).to_have_count(0)
    job = next(j for j in user.api.list_jobs().json() if j["name"] == "console-running")
    assert job["status"] == "CANCELLED" and job["cancel_requested_at"] and "result_url" not in job, job
    assert page.problems == []
