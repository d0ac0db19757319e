"""Every build the bridge created, and its verdict, in the bridge's SQLite store.

A build is recorded the moment Drone answered its number, before the bridge replies, so a restart
loses nothing; once the "started" reply and the pending status are out it is ``announced``. Its
verdict is applied exactly once, however many of the webhook, the poller and the timeout see the
end: :meth:`Records.claim` takes the delivery in one transaction and hands back a token (the first
outcome stored wins and never changes), :meth:`Records.delivered` ends it, and a delivery that
failed half-way is :meth:`Records.release`\\ d for a later pass (after a backoff that doubles up to
an hour), which sends the same verdict again; every forge and chat call it makes is idempotent.
Only the token's holder can end or release a claim; a claim not ended within ``CLAIM_S`` (its
worker died) may be taken again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .dedupe import Store

CLAIM_S = 300.0  # a delivery not finished in this long was cut short (its worker died)
MAX_ATTEMPTS = 20  # deliveries tried (over about 15 hours) before the bridge gives up on one
BACKOFF_S = (60.0, 3600.0)  # the wait after the first failed delivery, and the longest wait
Verdict = str  # pass | fail | error


@dataclass(frozen=True)
class Outcome:
    """How a build ended, as the PR reply, the status and the chat say it."""

    verdict: Verdict  # pass | fail | error
    status: str  # Drone's status (success, failure, killed, …) or "lost"
    seconds: int = 0  # the build's duration as Drone measured it
    lane: str = ""  # the lane that ran, when the run said so
    fallback: str = ""  # why a quick request ran the cold lane
    step: str = ""  # the failing step
    detail: str = ""  # its one-line detail, or why the build is an error
    canonical: str = ""  # what happened to the canonical

    def to_json(self) -> str:
        """Return the outcome as stored."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        """Return a stored outcome (fields a later version dropped are ignored)."""
        body = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})


@dataclass(frozen=True)
class BuildRecord:
    """A build the bridge created: who asked, where to answer, and (once known) how it ended."""

    number: int
    created: float
    recipe: str
    lane: str  # the lane asked: cold | quick
    user: str
    link: str
    forge: str | None = None
    repo: str | None = None
    pr: int | None = None
    sha: str | None = None
    comment_id: int | None = None
    reply_id: int | None = None
    reaction_id: str | None = None
    room: str | None = None
    event_id: str | None = None
    announced: bool = False
    verdict: Verdict | None = None
    outcome: Outcome | None = None
    delivered: float | None = None
    attempts: int = 0
    claim: str | None = None  # the token of a claim handed back by Records.claim

    @property
    def context(self) -> str:
        """Return the commit status context of the lane asked: ``cc-ci/cold`` or ``cc-ci/quick``."""
        return f"cc-ci/{self.lane}"


_COLUMNS = (
    "number, created, recipe, lane, user, link, forge, repo, pr, sha, comment_id, reply_id, "
    "reaction_id, room, event_id, announced, verdict, outcome, delivered, attempts, claim"
)
_SELECT = f"SELECT {_COLUMNS} FROM builds"  # noqa: S608 - our names


def _record(row: tuple[Any, ...]) -> BuildRecord:
    names = [name.strip() for name in _COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    outcome = values.pop("outcome")
    values["announced"] = bool(values["announced"])
    return BuildRecord(**values, outcome=Outcome.from_json(outcome) if outcome else None)


def backoff(attempts: int) -> float:
    """Return the wait before delivery attempt ``attempts + 1``: 1, 2, 4 … minutes, at most 1 h."""
    first, longest = BACKOFF_S
    return float(min(first * 2 ** max(attempts - 1, 0), longest))


class Records:
    """The ``builds`` table of a :class:`~ccci_bridge.dedupe.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: BuildRecord) -> None:
        """Record a build Drone just created (a number seen before is replaced: Drone's word)."""
        values = asdict(
            replace(record, outcome=None, verdict=None, delivered=None, attempts=0, claim=None)
        )
        values.pop("outcome")
        names = list(values)
        with self.store.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO builds ({', '.join(names)}) "  # noqa: S608 - our names
                f"VALUES ({', '.join('?' * len(names))})",
                [values[name] for name in names],
            )

    def announce(self, number: int, reply_id: int | None, reaction_id: str | None) -> None:
        """Mark the "started" messages done, noting the reply and reaction ids if known.

        An id the verdict already set (it posted its own reply) is kept.
        """
        with self.store.transaction() as db:
            db.execute(
                "UPDATE builds SET announced = 1, reply_id = COALESCE(reply_id, ?), "
                "reaction_id = COALESCE(reaction_id, ?) WHERE number = ?",
                (reply_id, reaction_id, number),
            )

    def note_reply(self, number: int, reply_id: int) -> None:
        """Remember the reply the verdict posted (the "started" one was lost or deleted)."""
        with self.store.transaction() as db:
            db.execute("UPDATE builds SET reply_id = ? WHERE number = ?", (reply_id, number))

    def get(self, number: int) -> BuildRecord | None:
        """Return the record of build ``number``, if the bridge created it."""
        with self.store.reading() as db:
            row = db.execute(f"{_SELECT} WHERE number = ?", (number,)).fetchone()
        return _record(row) if row else None

    def undelivered(self, limit: int = 200) -> list[BuildRecord]:
        """Return the builds whose verdict is due for delivery, oldest first."""
        with self.store.reading() as db:
            rows = db.execute(
                f"{_SELECT} WHERE delivered IS NULL AND attempts < ? AND next_try <= ? "
                "ORDER BY created LIMIT ?",
                (MAX_ATTEMPTS, self.store.clock(), limit),
            ).fetchall()
        return [_record(row) for row in rows]

    def claim(self, number: int, outcome: Outcome) -> BuildRecord | None:
        """Take the delivery of build ``number``'s verdict, or return None if it is not ours.

        The first outcome stored is the verdict for good: a later claim (a retry, the other of
        webhook and poller) gets the record back with that outcome, not its own. The record
        carries the claim's token, which :meth:`delivered` and :meth:`release` need.
        """
        now, token = self.store.clock(), secrets.token_hex(8)
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE builds SET claimed = ?, claim = ?, verdict = COALESCE(verdict, ?), "
                "outcome = COALESCE(outcome, ?) WHERE number = ? AND delivered IS NULL "
                "AND attempts < ? AND (claimed IS NULL OR claimed < ?)",
                (
                    now,
                    token,
                    outcome.verdict,
                    outcome.to_json(),
                    number,
                    MAX_ATTEMPTS,
                    now - CLAIM_S,
                ),
            )
            if cursor.rowcount != 1:
                return None
            row = db.execute(f"{_SELECT} WHERE number = ?", (number,)).fetchone()
        return _record(row)

    def delivered(self, record: BuildRecord) -> bool:
        """End a claimed delivery: the verdict reached every place. False: the claim was lost."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE builds SET delivered = ?, claimed = NULL, claim = NULL "
                "WHERE number = ? AND claim = ?",
                (self.store.clock(), record.number, record.claim),
            )
        return cursor.rowcount == 1

    def release(self, record: BuildRecord) -> int:
        """Give a failed claimed delivery back for a later pass; return the attempts so far."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT attempts FROM builds WHERE number = ? AND claim = ?",
                (record.number, record.claim),
            ).fetchone()
            if row is None:  # not ours any more: its new holder decides
                return record.attempts
            attempts = int(row[0]) + 1
            db.execute(
                "UPDATE builds SET claimed = NULL, claim = NULL, attempts = ?, next_try = ? "
                "WHERE number = ?",
                (attempts, self.store.clock() + backoff(attempts), record.number),
            )
        return attempts

    def recent(self, recipe: str | None = None, limit: int = 100) -> list[BuildRecord]:
        """Return the latest builds, newest first, of ``recipe`` or of every recipe."""
        where, args = ("WHERE recipe = ?", [recipe]) if recipe else ("", [])
        with self.store.reading() as db:
            rows = db.execute(
                f"{_SELECT} {where} ORDER BY created DESC, number DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return [_record(row) for row in rows]

    def latest_cold(self, recipe: str) -> BuildRecord | None:
        """Return the latest finished cold build of ``recipe`` on its latest release (no PR)."""
        with self.store.reading() as db:
            row = db.execute(
                f"{_SELECT} WHERE recipe = ? AND lane = 'cold' AND pr IS NULL "
                "AND verdict IS NOT NULL ORDER BY created DESC, number DESC LIMIT 1",
                (recipe,),
            ).fetchone()
        return _record(row) if row else None
