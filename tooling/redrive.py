"""`invoke redrive`: move the DLQ's dead letters back to the job queue and make their jobs runnable.

A dead letter is the message of a job whose last allowed delivery failed: the worker marked the
job FAILED (with its error) and the queue's redrive policy moved the message to the DLQ. Once
the cause is fixed (a deploy, a downstream back up), this task gives each such job a new set of
deliveries:

1. **Receive** a batch from the DLQ, holding the messages invisible (``HOLD_SECONDS``).
2. **Classify** each message by its job record (``GetItem``, consistent):

   - job FAILED -> **make it PENDING** with a conditional update (only FAILED -> PENDING,
     only if the record is unchanged since it was read; the keys are never written). The
     error, the attempts so far and when it failed are appended to the record's ``redrives``
     list (``GET /job`` shows it); ``error``, ``completedAt`` and any lease are removed;
     ``attempts`` is kept (the next claim counts on from it);
   - job PENDING *with* a ``redrives`` entry -> an earlier redrive made it PENDING and
     stopped before its message was moved (or the DLQ held a duplicate): moved as is. No
     claim has happened since (a claim makes the job PROCESSING for good);
   - anything else stays in the DLQ and is reported: not a job message, job gone (TTL or
     deleted), job COMPLETE/CANCELLED/PROCESSING, or PENDING without a redrive (the worker
     could not write FAILED; look at it before retrying it).

3. **Send** the body (and message attributes) unchanged to the job queue of the job's
   priority (``queue_urls`` output; the record's ``priority``, normal when absent), with
   ``MessageGroupId`` = the owner (a fair queue's tenant), **then delete** it from the DLQ.
   Messages left alone are made visible again at the end.

Why this order, and what a crash half-way leaves behind:

- job PENDING before its message is back: the worker's claim is conditional on PENDING, so a
  message that reached the queue ahead of the update would find the job FAILED (terminal),
  be acknowledged and deleted, and leave the job PENDING with no message. Updated first,
  a crash before the send leaves the job PENDING with its dead letter back in the DLQ after
  ``HOLD_SECONDS``; the next run moves it (the PENDING-with-redrive rule).
- send before delete: a crash between them leaves the message in both queues. The copy in the
  DLQ is then moved again (job still PENDING) or reported (job already COMPLETE); a duplicate
  delivery is harmless because the worker's claim is conditional.

Why not SQS ``StartMessageMoveTask`` (the console's "DLQ redrive"): it moves *every* message
of the DLQ, with no way to leave behind the ones whose job is gone or finished, and no way to
make a job PENDING just before its own message arrives; and moto 5.2.5 (the embedded
backend) does not implement it. Receive/send/delete is a message at a time but uses only
calls both backends have.

The moved message is a new message: its ``ApproximateReceiveCount`` starts again at 1, so
the worker (whose last-attempt test is that count against ``MAX_RECEIVE_COUNT``, not the
job's ``attempts``) gives the job a full ``max_receive_count`` deliveries, marks it FAILED on
the last one again if it still fails, and the queue moves it to the DLQ on the same delivery.
Its age also starts again, so the queue's retention period counts from the redrive.

``--dry-run`` lists the dead letters and what would happen to each, and changes nothing. SQS
has no "peek": listing receives the messages, which holds them invisible while the task runs
and adds one to their DLQ receive count (the DLQ has no redrive policy, so that count
decides nothing); they are made visible again before it returns.

The job record's attribute names (``status``, ``owner_status`` = ``<owner>#<STATUS>`` for the
status index, ``error``, ...) are the data layer's (``lambda_src/jobs/store.py``). The task
writes them here rather than importing the Lambda code: the tooling package does not ship or
import ``lambda_src`` (it is not on the path of ``invoke``), and the record layout is the
table's contract. ``tests/tooling/test_redrive.py`` runs the worker's own processor on a
redriven job, so a drift between the two fails a test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tooling.errors import OperatorError
from tooling.status import require_output

if TYPE_CHECKING:
    from tooling.environments import Environment

HOLD_SECONDS = 300  # how long a received dead letter stays invisible while the task runs
WAIT_SECONDS = 1  # long polling on each receive: a short poll may miss messages on AWS
ERROR_PREVIEW = 100

MOVE = "move"
LEAVE = "leave"

Out = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class DeadLetter:
    """One message of the DLQ and what redrive does (or would do) with it."""

    message_id: str
    owner_id: str | None = None
    job_id: str | None = None
    status: str | None = None  # the job's status when read; None: not a job message, or no job
    error: str | None = None
    attempts: int = 0
    decision: str = LEAVE  # MOVE or LEAVE
    reason: str = ""
    moved: bool = False  # dry run: always False

    def render(self, dry_run: bool) -> str:
        verb = "left" if self.decision == LEAVE else ("would move" if dry_run else "moved")
        who = f"job {self.job_id}  owner {self.owner_id}" if self.job_id else f"message {self.message_id}"
        state = f"  {self.status}" if self.status else ""
        attempts = f"  attempts={self.attempts}" if self.status else ""
        error = f"  error: {_preview(self.error)}" if self.error else ""
        return f"  {verb:<10} {who}{state}{attempts}{error}  ({self.reason})"


@dataclass
class RedriveReport:
    dlq_url: str
    queue_url: str
    dry_run: bool
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def to_move(self) -> list[DeadLetter]:
        return [letter for letter in self.letters if letter.decision == MOVE]

    @property
    def moved(self) -> list[DeadLetter]:
        return [letter for letter in self.letters if letter.moved]

    @property
    def left(self) -> list[DeadLetter]:
        return [letter for letter in self.letters if letter.decision == LEAVE]

    def summary(self) -> str:
        dlq = _queue_name(self.dlq_url)
        # each job's priority queue (normal's name for the stack's queues)
        queue = f"{_queue_name(self.queue_url)} (or its high/low sibling, by each job's priority)"
        if self.dry_run:
            return (
                f"dry run: {len(self.letters)} dead letters in {dlq}; {len(self.to_move)} would move back to "
                f"{queue}, {len(self.left)} would stay. Nothing was changed."
            )
        return (
            f"moved {len(self.moved)} dead letters from {dlq} back to {queue} (their jobs are PENDING); "
            f"{len(self.left)} left in {dlq}."
        )


def _preview(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= ERROR_PREVIEW else flat[: ERROR_PREVIEW - 1] + "…"


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _now_iso() -> str:
    """The data layer's timestamp format: UTC, milliseconds, a Z (jobs.model.iso)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# ----------------------------------------------------------------------------- the job message


def parse_job_message(body: str) -> tuple[str, str] | None:
    """``(owner_id, job_id)`` of a job message (the worker's rules), or None for anything else."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    owner, job_id = data.get("owner_id"), data.get("job_id")
    if not isinstance(owner, str) or not owner or not isinstance(job_id, str):
        return None
    try:
        return owner, str(uuid.UUID(job_id))
    except ValueError:
        return None


def job_message_body(owner_id: str, job_id: str) -> str:
    """A job message's body as the api sends it (``jobs.store.message_body``): which job, nothing
    else (the bench's floor sends it too). A redriven job's message is sent with it: a message
    the worker re-queued for lack of time carries ``receives`` (the receives its job used),
    which is dropped, so a redriven job gets a full ``max_receive_count`` deliveries again."""
    return json.dumps({"owner_id": owner_id, "job_id": job_id}, separators=(",", ":"))


# ----------------------------------------------------------------------------- the job record


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """The scalar and list attributes of a low-level item, as Python values (enough here)."""
    values: dict[str, Any] = {}
    for key, typed in item.items():
        kind, value = next(iter(typed.items()))
        values[key] = (int(value) if value.lstrip("-").isdigit() else float(value)) if kind == "N" else value
    return values


def read_job(ddb: Any, table: str, owner_id: str, job_id: str) -> dict[str, Any] | None:
    answer = ddb.get_item(
        TableName=table,
        Key={"owner_id": {"S": owner_id}, "job_id": {"S": job_id}},
        ConsistentRead=True,
    )
    item = answer.get("Item")
    return _plain(item) if item else None


def decide(job: dict[str, Any] | None) -> tuple[str, str]:
    """What to do with a job message's dead letter, given its job: ``(MOVE|LEAVE, why)``."""
    if job is None:
        return LEAVE, "no such job: expired or deleted"
    status = job.get("status")
    if status == "FAILED":
        return MOVE, "FAILED -> PENDING"
    if status == "PENDING" and job.get("redrives"):
        return MOVE, "already PENDING from an earlier redrive whose message was not moved yet"
    if status == "PENDING":
        return LEAVE, "job is PENDING but was never marked FAILED: check the worker's log before retrying it"
    if status == "SCHEDULED":
        # Only EventBridge Scheduler dead-letters a SCHEDULED job's message (the worker marks a
        # job FAILED before its message reaches the DLQ): its schedule could not deliver it.
        # The worker claims a SCHEDULED job as it does a PENDING one.
        return MOVE, "SCHEDULED, its schedule could not deliver its message: sent to the queue now"
    return LEAVE, f"job is {status}: nothing to retry"


def make_pending(ddb: Any, table: str, job: dict[str, Any], dead_letter_id: str, now: str) -> bool:
    """FAILED -> PENDING, only if the record is still what was read; False when it was not."""
    entry: dict[str, Any] = {
        "at": {"S": now},
        "attempts": {"N": str(int(job.get("attempts", 0)))},
        "dead_letter": {"S": dead_letter_id},
    }
    if job.get("error"):
        entry["error"] = {"S": str(job["error"])}
    if job.get("completedAt"):
        entry["failed_at"] = {"S": str(job["completedAt"])}
    values: dict[str, Any] = {
        ":pending": {"S": "PENDING"},
        ":failed": {"S": "FAILED"},
        ":os": {"S": f"{job['owner_id']}#PENDING"},
        ":now": {"S": now},
        ":entry": {"L": [{"M": entry}]},
        ":none": {"L": []},
    }
    condition = "attribute_exists(job_id) AND #status = :failed AND "
    if job.get("updatedAt"):
        condition += "updatedAt = :read"
        values[":read"] = {"S": str(job["updatedAt"])}
    else:
        condition += "attribute_not_exists(updatedAt)"
    try:
        ddb.update_item(
            TableName=table,
            Key={"owner_id": {"S": job["owner_id"]}, "job_id": {"S": job["job_id"]}},
            UpdateExpression=(
                "SET #status = :pending, owner_status = :os, updatedAt = :now, "
                "redrives = list_append(if_not_exists(redrives, :none), :entry) "
                "REMOVE #error, completedAt, lease_owner, lease_until"
            ),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ----------------------------------------------------------------------------- the queues


def _release(sqs: Any, dlq_url: str, handles: list[str], out: Out) -> None:
    """Make held messages visible again (they come back after HOLD_SECONDS anyway)."""
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        answer = sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(chunk)],
        )
        if answer.get("Failed"):
            out(
                f"note: {len(answer['Failed'])} dead letters could not be made visible again at once; "
                f"they reappear within {HOLD_SECONDS // 60} minutes"
            )


def _send(sqs: Any, queue_url: str, message: dict[str, Any], owner_id: str | None = None) -> None:
    kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        kwargs["MessageAttributes"] = message["MessageAttributes"]
    # The fair queue's tenant is the owner (as the api sends it); a message sent before fair
    # queues has no group: the owner from its body then.
    group = message.get("Attributes", {}).get("MessageGroupId") or owner_id
    if group:
        kwargs["MessageGroupId"] = group
    sqs.send_message(**kwargs)


def queue_for(outputs: dict[str, Any], job: dict[str, Any] | None) -> str:
    """The queue of the job's priority (normal when the record has none, or the stack one queue)."""
    urls = outputs.get("queue_urls")
    priority = str((job or {}).get("priority") or "normal")
    if isinstance(urls, dict) and isinstance(urls.get(priority), str):
        return str(urls[priority])
    return require_output(outputs, "queue_url")


def redrive(
    clients: Any,
    outputs: dict[str, Any],
    dry_run: bool = False,
    out: Out = _print,
    hold_seconds: int = HOLD_SECONDS,
    wait_seconds: int = WAIT_SECONDS,
) -> RedriveReport:
    """Move the dead letters of FAILED jobs back to the job queue (see the module doc).

    ``clients`` has ``client(service)`` (an AwsAccess); ``outputs`` are the stack's outputs.
    Prints one line per dead letter as it goes, and returns the report.
    """
    sqs, ddb = clients.client("sqs"), clients.client("dynamodb")
    queue_url, dlq_url = require_output(outputs, "queue_url"), require_output(outputs, "dlq_url")
    table = require_output(outputs, "table_name")
    report = RedriveReport(dlq_url=dlq_url, queue_url=queue_url, dry_run=dry_run)
    held: list[str] = []  # receipt handles of the messages left in the DLQ, released at the end
    seen: dict[str, DeadLetter] = {}
    try:
        while True:  # ends: every message received is held invisible (or deleted) until the end
            answer = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hold_seconds,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                message_id, handle = message["MessageId"], message["ReceiptHandle"]
                earlier = seen.get(message_id)
                if earlier is not None:  # delivered twice (at-least-once): act as the first time
                    if earlier.moved:
                        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=handle)
                    else:
                        held.append(handle)
                    continue
                letter = _handle(sqs, ddb, table, outputs, dlq_url, message, dry_run)
                seen[message_id] = letter
                report.letters.append(letter)
                if not letter.moved:
                    held.append(handle)
                out(letter.render(dry_run))
    finally:
        if held:
            _release(sqs, dlq_url, held, out)
    return report


def _handle(
    sqs: Any, ddb: Any, table: str, outputs: dict[str, Any], dlq_url: str, message: dict[str, Any], dry_run: bool
) -> DeadLetter:
    letter = DeadLetter(message_id=message["MessageId"])
    parsed = parse_job_message(message.get("Body", ""))
    if parsed is None:
        letter.reason = "not a job message"
        return letter
    letter.owner_id, letter.job_id = parsed
    job = read_job(ddb, table, *parsed)
    if job is not None:
        letter.status, letter.error = str(job.get("status", "?")), job.get("error")
        letter.attempts = int(job.get("attempts", 0))
    letter.decision, letter.reason = decide(job)
    if dry_run or letter.decision != MOVE or job is None:
        return letter
    if job.get("status") == "FAILED" and not make_pending(ddb, table, job, letter.message_id, _now_iso()):
        current = read_job(ddb, table, *parsed)
        letter.decision = LEAVE
        letter.reason = f"job changed while redriving (now {current.get('status') if current else 'gone'})"
        return letter
    try:
        _send(sqs, queue_for(outputs, job), {**message, "Body": job_message_body(*parsed)}, letter.owner_id)
    except Exception as exc:
        raise OperatorError(
            f"job {letter.job_id} is PENDING but its message could not be sent to the job queue ({exc})",
            "run invoke redrive again: its dead letter is back in the DLQ within "
            f"{HOLD_SECONDS // 60} minutes and is moved then",
        ) from exc
    # sent: from here a crash leaves a duplicate at worst, never a lost job
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    letter.moved = True
    return letter


# ----------------------------------------------------------------------------- the task


def run_with(
    clients: Any,
    outputs: dict[str, Any],
    env_name: str,
    dry_run: bool = False,
    yes: bool = False,
    out: Out = _print,
    confirm: Callable[[str], bool] | None = None,
) -> RedriveReport:
    """The task on given clients and outputs: list first, ask (unless ``yes``), then move."""
    dlq_url = require_output(outputs, "dlq_url")
    attrs = clients.client("sqs").get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    visible, in_flight = (
        int(attrs.get("ApproximateNumberOfMessages", 0)),
        int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )
    busy = f" (+{in_flight} in flight: received by someone else, not seen here)" if in_flight else ""
    out(f"DLQ {_queue_name(dlq_url)} of env {env_name!r}: about {visible} dead letters{busy}")
    if dry_run or not yes:
        survey = redrive(clients, outputs, dry_run=True, out=out)
        if dry_run:
            out(survey.summary())
            return survey
        if not survey.to_move:
            out(f"nothing to redrive: {len(survey.left)} dead letters, none of a FAILED job. Nothing was changed.")
            return survey
        if confirm is None:
            from tooling.deploy import confirm_on_terminal

            confirm = confirm_on_terminal
        question = (
            f"Move {len(survey.to_move)} dead letters back to {_queue_name(require_output(outputs, 'queue_url'))} "
            f"(or the high/low queue, by each job's priority) and make their jobs PENDING in env {env_name!r}?"
        )
        if not confirm(question):
            raise OperatorError("redrive cancelled: nothing was changed", None, exit_code=1)
    report = redrive(clients, outputs, dry_run=False, out=out)
    out(report.summary())
    return report


def run(env: Environment, dry_run: bool = False, yes: bool = False, out: Out = _print) -> RedriveReport:
    """`invoke redrive` for an environment: credentials or the embedded endpoint, outputs, then run_with."""
    from tooling import deploy

    access = deploy.preflight(env, out)
    return run_with(access, deploy.stack_outputs(env), env.name, dry_run=dry_run, yes=yes, out=out)
