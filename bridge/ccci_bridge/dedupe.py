"""Remember what the bridge already acted on, shared by every gunicorn worker.

One SQLite file in the bridge's state dir (WAL mode, a short transaction per call) holds:

- ``seen``: delivery ids and ``(repository, comment id)`` keys; a request whose keys were seen is a
  redelivery and never starts a second build. Keys older than ``RETENTION_S`` are forgotten.
- ``cooldown``: per user, when their last build request was accepted.
- ``builds``: every build the bridge created and its verdict (:mod:`ccci_bridge.records`).

Each call opens its own connection, so the store is safe across gunicorn's fork and across threads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ccci_core.errors import ConfigError

from .errors import StoreError

FILENAME = "bridge.sqlite3"
RETENTION_S = 30 * 24 * 3600
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_ts ON seen (ts);
CREATE TABLE IF NOT EXISTS cooldown (user TEXT PRIMARY KEY, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS builds (
    number INTEGER PRIMARY KEY,  -- the Drone build of the CI repository
    created REAL NOT NULL,
    recipe TEXT NOT NULL,
    lane TEXT NOT NULL,          -- the lane asked: cold | quick
    user TEXT NOT NULL,          -- who asked: gitea:alice, chat:@bob:example.org
    link TEXT NOT NULL,
    forge TEXT, repo TEXT, pr INTEGER, sha TEXT,
    comment_id INTEGER, reply_id INTEGER, reaction_id TEXT,
    room TEXT, event_id TEXT,    -- a chat request: where to reply
    verdict TEXT,                -- pass | fail | error, once known (then it never changes)
    outcome TEXT,                -- the verdict's facts as JSON (step, detail, canonical, ...)
    announced INTEGER NOT NULL DEFAULT 0,  -- the "started" reply and pending status are done
    claimed REAL,                -- a delivery of the verdict is under way since
    claim TEXT,                  -- … by the holder of this token
    delivered REAL,              -- the verdict reached every place it goes
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0  -- a failed delivery waits until then (backoff)
);
CREATE INDEX IF NOT EXISTS builds_open ON builds (delivered, next_try);
CREATE INDEX IF NOT EXISTS builds_recipe ON builds (recipe, created);
"""


class Store:
    """The dedupe keys and cooldowns of one bridge, in ``<state dir>/bridge.sqlite3``."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / FILENAME
        self.clock = clock
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError("CCCI_BRIDGE_STATE_DIR", f"cannot use {self.path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside a write transaction; SQLite's errors become StoreError."""
        try:
            with self._connect() as db:
                # IMMEDIATE takes the write lock first: check-then-insert is atomic across workers.
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"dedupe store {self.path}: {exc}") from exc

    def claim(self, keys: Iterable[str]) -> bool:
        """Record ``keys`` and return True, or return False if any of them was seen before."""
        keys = list(keys)
        now = self.clock()
        with self.transaction() as db:
            db.execute("DELETE FROM seen WHERE ts < ?", (now - RETENTION_S,))
            marks = ",".join("?" * len(keys))
            if db.execute(f"SELECT 1 FROM seen WHERE key IN ({marks})", keys).fetchone():  # noqa: S608 - only placeholders
                return False
            db.executemany("INSERT INTO seen (key, ts) VALUES (?, ?)", [(k, now) for k in keys])
        return True

    def take_cooldown(self, user: str, cooldown_s: float) -> float:
        """Start ``user``'s cooldown and return 0, or return the seconds left of a running one."""
        now = self.clock()
        with self.transaction() as db:
            row = db.execute("SELECT ts FROM cooldown WHERE user = ?", (user,)).fetchone()
            if row is not None and now - row[0] < cooldown_s:
                return float(cooldown_s - (now - row[0]))
            db.execute("INSERT OR REPLACE INTO cooldown (user, ts) VALUES (?, ?)", (user, now))
        return 0.0

    def release_cooldown(self, user: str) -> None:
        """End ``user``'s cooldown, e.g. when their build could not be started."""
        with self.transaction() as db:
            db.execute("DELETE FROM cooldown WHERE user = ?", (user,))

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection for reads only: no write lock, so pages never wait on webhooks."""
        try:
            with self._connect() as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"dedupe store {self.path}: {exc}") from exc

    def ping(self) -> None:
        """Raise StoreError unless the store can be written."""
        with self.transaction() as db:
            db.execute("SELECT count(*) FROM seen")
