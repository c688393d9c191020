"""The results store of `advad bench --out DIR`: one SQLite database, `DIR/results.sqlite`.

Each run is one row written in one transaction, so a sweep killed at any moment (even SIGKILL) leaves
no half-written row; WAL journaling and a generous busy timeout let several processes (local jobs,
Ray workers, two sweeps on one folder) write without losing rows. A run is identified by its `key`
(model, dataset, protocol, task, seed, budget, parameters, conventions): re-running a sweep skips keys
already stored with a result, and retries those stored with an error.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator

STORE_FILE = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL, dataset TEXT NOT NULL, protocol TEXT NOT NULL, task TEXT, seed INTEGER NOT NULL,
    budget TEXT NOT NULL, params_hash TEXT NOT NULL, ok INTEGER NOT NULL,
    record TEXT NOT NULL, written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class ResultStore:
    """Append-mostly store of run records (the dictionaries of SPEC §4 `runs`)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / STORE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise ValueError(f"{self.path} was written by a newer advad (schema {row[0]}); upgrade advad")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=120)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=120000")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{self.path} is not a usable advad results store ({err})") from err
        finally:
            db.close()

    def done_keys(self) -> set[str]:
        """Keys of runs stored with a result (runs stored with an error are retried)."""
        with self._connect() as db:
            return {key for (key,) in db.execute("SELECT key FROM runs WHERE ok = 1")}

    def add(self, run: dict) -> None:
        """Store one run; a later result for the same key replaces an earlier error, never a result."""
        ok = int("error" not in run)
        values = (run["key"], run["model"], run["dataset"], run["protocol"], run.get("task"), run["seed"],
                  run["budget"], run["params_hash"], ok, json.dumps(run), time.time())
        with self._connect() as db:
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                       "ok=excluded.ok, record=excluded.record, written_at=excluded.written_at "
                       "WHERE runs.ok = 0", values)

    def runs(self) -> list[dict]:
        """Every stored run, in the order written."""
        with self._connect() as db:
            return [json.loads(record) for (record,) in db.execute("SELECT record FROM runs ORDER BY written_at")]
