"""Every build the bridge created, and its verdict, in the bridge's SQLite store.

A build is recorded the moment Drone answered its number, before the bridge replies, so a restart
loses nothing. Its verdict is applied exactly once, however many of the webhook, the poller and
the timeout see the end: :meth:`Records.claim` takes the delivery in one transaction (the first
outcome stored wins and never changes), :meth:`Records.delivered` ends it, and a delivery that
failed half-way is :meth:`Records.release`\\ d for the next pass, which sends the same verdict again
(every forge and chat call it makes is idempotent). A claim not ended within ``CLAIM_S`` (the
worker died) may be taken again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .dedupe import Store

CLAIM_S = 300.0  # a delivery not finished in this long was cut short (its worker died)
MAX_ATTEMPTS = 20  # deliveries tried before the bridge gives up on a verdict (and logs it)
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
    verdict: Verdict | None = None
    outcome: Outcome | None = None
    delivered: float | None = None
    attempts: int = 0

    @property
    def context(self) -> str:
        """Return the commit status context of the lane asked: ``cc-ci/cold`` or ``cc-ci/quick``."""
        return f"cc-ci/{self.lane}"


_COLUMNS = (
    "number, created, recipe, lane, user, link, forge, repo, pr, sha, comment_id, reply_id, "
    "reaction_id, room, event_id, verdict, outcome, delivered, attempts"
)


def _record(row: tuple[Any, ...]) -> BuildRecord:
    names = [name.strip() for name in _COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    outcome = values.pop("outcome")
    return BuildRecord(**values, outcome=Outcome.from_json(outcome) if outcome else None)


class Records:
    """The ``builds`` table of a :class:`~ccci_bridge.dedupe.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: BuildRecord) -> None:
        """Record a build Drone just created (a number seen before is replaced: Drone's word)."""
        values = asdict(replace(record, outcome=None, verdict=None, delivered=None, attempts=0))
        values.pop("outcome")
        names = list(values)
        with self.store.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO builds ({', '.join(names)}) "  # noqa: S608 - our names
                f"VALUES ({', '.join('?' * len(names))})",
                [values[name] for name in names],
            )

    def note(self, number: int, **changes: int | str | None) -> None:
        """Remember what the bridge learnt after recording: ``reply_id``, ``reaction_id``."""
        allowed = {"reply_id", "reaction_id"}
        if not changes or not set(changes) <= allowed:
            raise ValueError(f"only {sorted(allowed)} are noted later")
        sets = ", ".join(f"{name} = ?" for name in changes)
        with self.store.transaction() as db:
            db.execute(
                f"UPDATE builds SET {sets} WHERE number = ?",  # noqa: S608 - our names
                [*changes.values(), number],
            )

    def get(self, number: int) -> BuildRecord | None:
        """Return the record of build ``number``, if the bridge created it."""
        with self.store.transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM builds WHERE number = ?",  # noqa: S608 - our names
                (number,),
            ).fetchone()
        return _record(row) if row else None

    def undelivered(self, limit: int = 200) -> list[BuildRecord]:
        """Return the builds whose verdict has not reached its places yet, oldest first."""
        with self.store.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM builds "  # noqa: S608 - our names
                "WHERE delivered IS NULL AND attempts < ? ORDER BY created LIMIT ?",
                (MAX_ATTEMPTS, limit),
            ).fetchall()
        return [_record(row) for row in rows]

    def claim(self, number: int, outcome: Outcome) -> BuildRecord | None:
        """Take the delivery of build ``number``'s verdict, or return None if it is not ours.

        The first outcome stored is the verdict for good: a later claim (a retry, the other of
        webhook and poller) gets the record back with that outcome, not its own.
        """
        now = self.store.clock()
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE builds SET claimed = ?, verdict = COALESCE(verdict, ?), "
                "outcome = COALESCE(outcome, ?) WHERE number = ? AND delivered IS NULL "
                "AND attempts < ? AND (claimed IS NULL OR claimed < ?)",
                (now, outcome.verdict, outcome.to_json(), number, MAX_ATTEMPTS, now - CLAIM_S),
            )
            if cursor.rowcount != 1:
                return None
            row = db.execute(
                f"SELECT {_COLUMNS} FROM builds WHERE number = ?",  # noqa: S608 - our names
                (number,),
            ).fetchone()
        return _record(row)

    def delivered(self, number: int) -> None:
        """End the delivery of build ``number``'s verdict: it reached every place it goes."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE builds SET delivered = ?, claimed = NULL WHERE number = ?",
                (self.store.clock(), number),
            )

    def release(self, number: int) -> int:
        """Give a failed delivery back for the next pass; return the attempts made so far."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE builds SET claimed = NULL, attempts = attempts + 1 WHERE number = ?",
                (number,),
            )
            row = db.execute("SELECT attempts FROM builds WHERE number = ?", (number,)).fetchone()
        return int(row[0]) if row else 0

    def recent(self, recipe: str | None = None, limit: int = 100) -> list[BuildRecord]:
        """Return the latest builds, newest first, of ``recipe`` or of every recipe."""
        where, args = ("WHERE recipe = ?", [recipe]) if recipe else ("", [])
        with self.store.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM builds {where} "  # noqa: S608 - our names
                "ORDER BY created DESC, number DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [_record(row) for row in rows]

    def latest_cold(self, recipe: str) -> BuildRecord | None:
        """Return the latest finished cold build of ``recipe`` on its latest release (no PR)."""
        with self.store.transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM builds "  # noqa: S608 - our names
                "WHERE recipe = ? AND lane = 'cold' AND pr IS NULL AND verdict IS NOT NULL "
                "ORDER BY created DESC, number DESC LIMIT 1",
                (recipe,),
            ).fetchone()
        return _record(row) if row else None
