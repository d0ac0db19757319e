"""Bring a build's verdict back to where it was asked for: PR reply, commit status, chat.

:meth:`Verdicts.settle` is the one way a verdict is applied; the Drone webhook, the poller and
the timeout all call it. It asks Drone how the build ended (the webhook's word only says *when*
to ask), reads the run's ``ccci-result`` line from the step's log for the failing step and what
happened to the canonical, takes the delivery in the store (:meth:`Records.claim`: exactly once)
and then, each call idempotent so a retry after a half-done delivery repeats nothing visible:

1. the commit status ``cc-ci/<lane>`` of the PR head the build tested;
2. the bridge's reply on the PR, edited to the verdict. If the first reply was lost, the verdict
   goes to the bridge's own comment carrying the build's mark (``<!-- ccci-build-<n> -->``), found
   among the PR's comments; only if there is none is it posted, so a post whose answer was lost
   (a timeout after the forge created the comment) is not posted twice on the retry;
3. the command's reaction: 🚀 removed, 👍 / 👎 / 😕 added;
4. in chat, a reply to the command (Matrix transaction ``ccci-build-<n>``).

A build Drone never finishes turns ``error`` ("no result from Drone") ``timeout_s`` after it was
created.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from ccci_core.run_result import RunResult, find_result, one_line

from .drone import BuildInfo, Drone, StepInfo
from .errors import BridgeError, DroneError, StoreError
from .forge import Comment, Forge, Reaction, StatusState
from .records import MAX_ATTEMPTS, BuildRecord, Outcome, Records

log = logging.getLogger(__name__)

NO_RESULT = "no result from Drone"
ANNOUNCE_GRACE_S = 60.0  # this long, a verdict waits for the "started" reply and pending status
LOGS_READ = 3  # step logs read at most to find the run's result line
_VERDICT = {"success": "pass", "failure": "fail"}  # every other finished status is an error
STATE: dict[str, StatusState] = {"pass": "success", "fail": "failure", "error": "error"}
REACTION: dict[str, Reaction] = {"pass": "+1", "fail": "-1", "error": "confused"}


class ChatReplies(Protocol):
    """Where a chat command's verdict goes: a reply to the command's event."""

    def reply(self, room: str, event_id: str, txn_id: str, text: str) -> None:
        """Reply ``text`` to ``event_id`` in ``room`` as transaction ``txn_id``."""
        ...


# -- how a build ended ---------------------------------------------------------------------------


def _candidates(build: BuildInfo) -> list[StepInfo]:
    """Return the steps whose log may end with the run's result: failed ones first, then last."""
    steps = [s for s in build.steps if s.name != "clone"]
    failed = [s for s in steps if s.status == "failure"]
    return (failed + [s for s in reversed(steps) if s not in failed])[:LOGS_READ]


def outcome_of(build: BuildInfo, read_log: Callable[[StepInfo], list[str]]) -> Outcome:
    """Return how a finished build ended: Drone's status, and the run's own result line."""
    result: RunResult | None = None
    for candidate in _candidates(build):
        try:
            result = find_result(read_log(candidate))
        except DroneError as exc:
            log.warning(
                "cannot read the log of build %s step %s: %s", build.number, candidate.name, exc
            )
            continue
        if result is not None:
            break
    verdict = _VERDICT.get(build.status, "error")
    if verdict == "fail" and result is not None and result.verdict == "error":
        verdict = "error"  # the run refused or could not run (exit 2): not the recipe's fault
    failed = next((s for s in build.steps if s.status == "failure"), None)
    step, detail = "", ""
    if result is not None and verdict != "pass":
        step, detail = result.step or "", result.detail
    elif failed is not None:
        step, detail = failed.name, f"exit code {failed.exit_code}"
    if build.status == "killed":
        detail = detail or "the build was cancelled"
    elif verdict == "error" and not detail:
        detail = one_line(build.error) or f"Drone says the build is {build.status}"
    seconds = build.finished - build.started if build.finished >= build.started > 0 else 0
    return Outcome(
        verdict=verdict,
        status=build.status,
        seconds=seconds,
        lane=result.lane if result else "",
        fallback=result.fallback or "" if result else "",
        step=step,
        detail=detail,
        canonical=result.canonical if result else "",
    )


def lost() -> Outcome:
    """Return the outcome of a build Drone never reported on."""
    return Outcome(verdict="error", status="lost", detail=NO_RESULT)


# -- what the verdict says -----------------------------------------------------------------------


def duration(seconds: int) -> str:
    """Return ``seconds`` as ``4 min 12 s``."""
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def headline(record: BuildRecord, outcome: Outcome) -> str:
    """Return the verdict's first line: ``✅ PASS: cold run of `app` at 1a2b3c4d5e, 4 min 2 s``."""
    if outcome.verdict == "pass":
        mark = "✅ PASS"
    elif outcome.verdict == "fail":
        mark = "❌ FAIL"
    else:
        mark = "⚠️ cancelled" if outcome.status == "killed" else "⚠️ error"
    lane = outcome.lane or record.lane
    what = f"{lane} run of `{record.recipe}`" + (f" at {record.sha[:10]}" if record.sha else "")
    took = f", {duration(outcome.seconds)}" if outcome.seconds else ""
    return f"{mark}: {what}{took}"


def code(text: str) -> str:
    """Return ``text`` as a Markdown code span: no mention, link or image in it renders."""
    return "`" + text.replace("`", "'") + "`"


def problem(outcome: Outcome, quote: Callable[[str], str] = code) -> str:
    """Return the failing step and its detail (``upgrade — …``), or why the build is an error.

    Both may come from the run's log, which the PR's own tests can write to: ``quote`` them.
    """
    if outcome.step:
        step = quote(outcome.step)
        return f"{step} — {quote(outcome.detail)}" if outcome.detail else step
    return quote(outcome.detail) if outcome.detail else ""


def plain(text: str) -> str:
    """Return ``text`` for chat: a zero-width space after ``@`` so no ``@room`` pings anyone."""
    return text.replace("@", "@\u200b")


def ran_quick(record: BuildRecord, outcome: Outcome) -> bool:
    """Return whether the quick lane ran (a quick request may have fallen back to cold)."""
    return (outcome.lane or record.lane) == "quick"


def marker(number: int) -> str:
    """Return the hidden mark of build ``number``'s PR reply: an HTML comment, never rendered."""
    return f"<!-- ccci-build-{int(number)} -->"


def own_reply(comments: Iterable[Comment], account_id: int, number: int) -> int | None:
    """Return the id of the first comment of ``account_id`` marked for build ``number``, if any.

    Anyone can paste the mark into a comment: only one the bridge's own account wrote counts.
    """
    mark = marker(number)
    return next((c.id for c in comments if c.author_id == account_id and mark in c.body), None)


def reply_text(record: BuildRecord, outcome: Outcome, user: str) -> str:
    """Return the PR reply's body once the verdict is known, ending with the build's mark."""
    lines = [f"@{user} {headline(record, outcome)}."]
    if outcome.verdict != "pass" and (said := problem(outcome)):
        lines.append(("Failing step: " if outcome.step else "Reason: ") + said)
    if outcome.fallback:
        lines.append(f"The quick lane was asked; the cold lane ran: {code(outcome.fallback)}.")
    if outcome.canonical:
        lines.append(f"Canonical: {code(outcome.canonical)}.")
    if ran_quick(record, outcome):
        lines.append("Quick lane: lower confidence, never gates merge.")
    lines.append(f"Drone: {record.link}")
    lines.append(marker(record.number))
    return "\n\n".join(lines)


def chat_text(record: BuildRecord, outcome: Outcome) -> str:
    """Return the chat reply: the headline, the problem and the link on one line."""
    said = plain(problem(outcome, lambda text: text)) if outcome.verdict != "pass" else ""
    return " — ".join(part for part in (headline(record, outcome), said, record.link) if part)


def status_description(record: BuildRecord, outcome: Outcome) -> str:
    """Return the commit status's short description."""
    said = problem(outcome, lambda text: text) if outcome.verdict != "pass" else ""
    took = f" in {duration(outcome.seconds)}" if outcome.seconds else ""
    text = {"pass": "PASS", "fail": "FAIL"}.get(outcome.verdict, "error") + took
    if ran_quick(record, outcome):
        text += " (quick lane, advisory)"
    return f"{text}: {said}" if said else text


def user_of(record: BuildRecord) -> str:
    """Return the forge login of who asked (``gitea:alice`` → ``alice``)."""
    return record.user.partition(":")[2] or record.user


# -- applying it ---------------------------------------------------------------------------------


class Verdicts:
    """Settle builds: learn how they ended and deliver the verdict once."""

    def __init__(
        self,
        *,
        drone: Drone,
        forges: Mapping[str, Forge],
        records: Records,
        chat: ChatReplies | None,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.drone = drone
        self.forges = forges
        self.records = records
        self.chat = chat
        self.timeout_s = timeout_s
        self.clock = clock

    def settle(self, number: int) -> str:
        """Deliver build ``number``'s verdict if it is known; return what happened (for logs).

        ``unknown`` (not a build of ours), ``done`` (delivered before), ``pending`` (not finished,
        or its "started" messages are still going out), ``taken`` (another worker delivers it),
        ``delivered``, or ``failed`` (retried later; the store failing too).
        """
        try:
            return self._settle(number)
        except StoreError as exc:  # disk full, locked: the next pass tries again
            log.error("cannot settle build %s: %s", number, exc)
            return "failed"

    def _settle(self, number: int) -> str:
        record = self.records.get(number)
        if record is None:
            return "unknown"
        if record.delivered is not None:
            return "done"
        if not record.announced and self.clock() - record.created < ANNOUNCE_GRACE_S:
            return "pending"  # the "started" reply and status are going out: do not overtake them
        outcome = record.outcome or self._outcome(record)
        if outcome is None:
            return "pending"
        claimed = self.records.claim(number, outcome)
        if claimed is None:
            return "taken"
        try:
            self._deliver(claimed)
        except Exception as exc:  # a worker thread or the poller: log, retry later, never die
            attempts = self.records.release(claimed)
            if not isinstance(exc, BridgeError):
                log.exception("verdict of build %s not delivered", number)
            if attempts >= MAX_ATTEMPTS:
                log.error("verdict of build %s given up after %s tries: %s", number, attempts, exc)
            else:
                log.warning("verdict of build %s not delivered (try %s): %s", number, attempts, exc)
            return "failed"
        if not self.records.delivered(claimed):
            log.warning("build %s: delivered after its claim expired (sent twice?)", number)
        log.info("build %s: %s delivered", number, claimed.verdict)
        return "delivered"

    def poll(self) -> dict[str, int]:
        """Settle every build whose verdict has not been delivered; count what happened."""
        counts: dict[str, int] = {}
        for record in self.records.undelivered():
            what = self.settle(record.number)
            counts[what] = counts.get(what, 0) + 1
        return counts

    def _outcome(self, record: BuildRecord) -> Outcome | None:
        """Return how the build ended, a lost build's error past the timeout, or None (wait)."""
        try:
            build = self.drone.build(record.number)
        except DroneError as exc:
            log.warning("cannot ask Drone about build %s: %s", record.number, exc)
            build = None
        if build is not None and build.done:
            return outcome_of(
                build, lambda step: self.drone.step_log(record.number, step.stage, step.number)
            )
        if self.clock() - record.created > self.timeout_s:
            return lost()
        return None

    def _deliver(self, record: BuildRecord) -> None:
        outcome = record.outcome
        if outcome is None:  # a claim stores the outcome; a record without one is not claimed
            raise StoreError(f"build {record.number} has no outcome to deliver")
        if record.forge is not None and record.repo is not None:
            forge = self.forges.get(record.forge)
            if forge is None:
                log.warning("build %s: forge %s is not configured", record.number, record.forge)
            else:
                self._on_forge(forge, record, record.repo, outcome)
        if record.room and record.event_id and self.chat is not None:
            self.chat.reply(
                record.room,
                record.event_id,
                f"ccci-build-{record.number}",
                chat_text(record, outcome),
            )

    def _on_forge(self, forge: Forge, record: BuildRecord, repo: str, outcome: Outcome) -> None:
        if record.sha:
            forge.set_status(
                repo,
                record.sha,
                STATE[outcome.verdict],
                context=record.context,
                url=record.link,
                description=status_description(record, outcome),
            )
        if record.comment_id is None or record.pr is None:
            return  # asked in chat: the PR only gets the status
        text = reply_text(record, outcome, user_of(record))
        if record.reply_id is None or not forge.edit(repo, record.reply_id, text):
            self._reply_once(forge, record, repo, record.pr, text)
        forge.unreact(repo, record.comment_id, "rocket", record.reaction_id)
        forge.react(repo, record.comment_id, REACTION[outcome.verdict])

    def _reply_once(self, forge: Forge, record: BuildRecord, repo: str, pr: int, text: str) -> None:
        """Put the verdict in the build's marked reply of the bridge, or post it; note its id.

        The "started" reply was lost or deleted. A reply posted before (the "started" one, or the
        verdict by an earlier try) may exist although its id was never learnt: the POST timed out
        or the connection dropped after the forge created it. So the PR's comments are read
        first, and the bridge's own comment with the build's mark is edited if there is one.
        """
        found = own_reply(forge.comments(repo, pr), forge.account_id(), record.number)
        if found is None or not forge.edit(repo, found, text):
            found = forge.reply(repo, pr, text)
        self.records.note_reply(record.number, found)
