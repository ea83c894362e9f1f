"""End-to-end fixtures: ONE deployed local stack for every e2e test of the session.

``tooling.local_stack.start`` runs the real path: the embedded backend (moto on loopback),
``environments/local.tfvars`` applied with Terraform, and the local Lambda runtime on what was
deployed. It takes about 90 s, so the whole session shares it. Its working data (terraform
data dirs, local state, apply records) lives in a temporary ``JOBSTACK_WORK_ROOT``, so it never
touches the developer's ``.local/``.

The worker is deployed with a short timeout (``E2E_WORKER_TIMEOUT`` seconds), which makes the
queue's visibility timeout 6 x that + the batching window (31 s instead of 181 s): the tests
that kill a worker or send a poison job wait for real redeliveries, so they stay short.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ROOT, Api, User, wait_for
from tooling import local_stack
from tooling.local_stack import LocalStack

E2E_WORKER_TIMEOUT = 5  # seconds; visibility timeout = 6 * 5 + 1 = 31 s
# Small quota tiers for the users whose limits a test checks (tests/e2e/test_quotas.py): the
# defaults stay local.tfvars' generous ones, which the 2,000-job reliability test needs.
E2E_QUOTA_TIERS: dict[str, dict[str, float]] = {
    "e2e-capped": {"max_active_jobs": 5, "submit_rate_per_second": 100, "submit_burst": 100},
    "e2e-throttled": {"max_active_jobs": 100, "submit_rate_per_second": 0.5, "submit_burst": 3},
}
# Jobs due more than this many seconds ahead get an EventBridge Scheduler schedule instead of an
# SQS message delay (900 s outside tests): a job due in ~8 s goes through a real schedule, fired
# by the local runtime (tests/e2e/test_scheduling.py).
E2E_SCHEDULE_DELAY_THRESHOLD = 5
E2E_VARIABLES: dict[str, Any] = {
    "worker_timeout_seconds": E2E_WORKER_TIMEOUT,
    "quota_tiers": E2E_QUOTA_TIERS,
    "schedule_delay_threshold_seconds": E2E_SCHEDULE_DELAY_THRESHOLD,
    # Webhooks (tests/e2e/test_webhooks.py): 4 attempts, back-off ~1 s then ~2 s, 1 s per socket
    # operation, so a failing receiver reaches the webhooks DLQ within seconds.
    "webhook_timeout_seconds": 1,
    "webhook_max_receive_count": 4,
    "webhook_backoff_base_seconds": 1,
    "webhook_backoff_cap_seconds": 2,
}


class Console:
    """The runtime's console lines (function output, runtime notes), kept in memory, bounded."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def matching(self, *needles: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if all(n in line for n in needles)]

    def tail(self, count: int = 60) -> str:
        with self._lock:
            return "\n".join(list(self.lines)[-count:])


@pytest.fixture(scope="session")
def e2e_work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobstack-work")
    # Reuse the provider mirror the developer's checkout already found (saves a disk search).
    cached = ROOT / ".local" / "provider-mirror"
    if cached.is_file():
        shutil.copy(cached, root / "provider-mirror")
    return root


@pytest.fixture(scope="session")
def console() -> Console:
    return Console()


@pytest.fixture(scope="session")
def stack(e2e_work_root: Path, console: Console) -> Iterator[LocalStack]:
    """The deployed local stack (backend + terraform apply + local runtime), stopped at the end."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOBSTACK_WORK_ROOT", str(e2e_work_root))
        for name in ("JOBSTACK_ENDPOINT_URL", "AWS_ENDPOINT_URL", "JOBSTACK_ENV"):
            mp.delenv(name, raising=False)
        deploy_log: list[str] = []
        try:
            running = local_stack.start(out=deploy_log.append, console=console, variables=E2E_VARIABLES)
        except BaseException:
            print("\n".join(deploy_log[-80:]))
            raise
        try:
            assert running.outputs["visibility_timeout_seconds"] == 6 * E2E_WORKER_TIMEOUT + 1
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session")
def make_user(stack: LocalStack) -> Callable[[], User]:
    """A new confirmed user of the stack's pool, with a fresh ID token."""

    def make() -> User:
        username, password = stack.create_user()
        token = stack.id_token(username, password)
        return User(username, password, token, Api(stack.api_url, token))

    return make


@pytest.fixture(scope="session")
def make_member(stack: LocalStack) -> Callable[[str], User]:
    """A new user in the Cognito group ``group`` (created if needed), with a fresh ID token,
    which then carries ``cognito:groups``."""

    def make(group: str) -> User:
        cognito = stack.client("cognito-idp")
        pool = stack.outputs["user_pool_id"]
        with contextlib.suppress(cognito.exceptions.GroupExistsException):
            cognito.create_group(GroupName=group, UserPoolId=pool)
        username, password = stack.create_user()
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        token = stack.id_token(username, password)
        return User(username, password, token, Api(stack.api_url, token))

    return make


@pytest.fixture(scope="session")
def alice(make_user: Callable[[], User]) -> User:
    return make_user()


@pytest.fixture(scope="session")
def bob(make_user: Callable[[], User]) -> User:
    return make_user()


@pytest.fixture
def endpoint_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the tasks read to find the embedded backend (for tests that run a task, e.g. deploy)."""
    monkeypatch.setenv("JOBSTACK_ENDPOINT_URL", stack.backend.endpoint)
    return stack.backend.endpoint


@pytest.fixture
def queue_drained(stack: LocalStack) -> Iterator[None]:
    """Start and end with an empty job queue (moto's SQS slows down as a queue grows)."""
    sqs = stack.client("sqs")
    url = stack.outputs["queue_url"]

    def depth() -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    with contextlib.suppress(TimeoutError):
        wait_for(lambda: depth() == 0, 120, "the job queue to drain before the test", interval=1.0)
    yield
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: depth() == 0, 120, "the job queue to drain after the test", interval=1.0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _show_console_on_failure(request: pytest.FixtureRequest, console: Console) -> Iterator[None]:
    started = time.monotonic()
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"--- last runtime console lines ({time.monotonic() - started:.0f}s test) ---")
        print(console.tail(80))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
