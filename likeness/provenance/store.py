"""The local provenance store: SQLite (WAL) mapping watermark payloads and file hashes
to the manifests of what likeness signed.

Why it exists: re-encoding a video strips its C2PA manifest but not the watermark;
the payload found in the pixels leads back here, to the manifest the file once carried.

Several processes may write at once (parallel `animate` runs): WAL lets readers run
beside one writer, `busy_timeout` makes SQLite wait for the lock, each write is one
short transaction, and a write that still meets a lock is retried with backoff, so a
user never sees "database is locked".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from likeness.config import store_path
from likeness.errors import ProvenanceError
from likeness.hashing import sha256_file

__all__ = [
    "Record",
    "Store",
    "lookup_payload",
    "lookup_sha256",
    "payload_to_hex",
    "record",
    "sha256_file",
]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
RETRIES = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id   INTEGER,
    payload_hex  TEXT,
    key_id       INTEGER,
    sha256       TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    created_utc  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_payload ON records(payload_hex);
CREATE INDEX IF NOT EXISTS records_sha256 ON records(sha256);
"""
_COLUMNS = "id, content_id, payload_hex, key_id, sha256, manifest, file_name, created_utc"


@dataclass(frozen=True)
class Record:
    """One signed output. `manifest` is the manifest store JSON c2pa read back from it."""

    id: int
    content_id: int | None
    payload_hex: str | None
    key_id: int | None
    sha256: str
    manifest: str
    file_name: str
    created_utc: str

    def manifest_dict(self) -> dict:
        try:
            return json.loads(self.manifest)
        except ValueError:
            return {}

    def to_dict(self, with_manifest: bool = True) -> dict:
        out = {
            "id": self.id,
            "content_id": self.content_id,
            "payload": self.payload_hex,
            "key_id": self.key_id,
            "sha256": self.sha256,
            "file_name": self.file_name,
            "created_utc": self.created_utc,
        }
        if with_manifest:
            out["manifest"] = self.manifest_dict()
        return out


def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class Store:
    """Short-lived connections: one per call, so no lock outlives a call."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else store_path()
        self._ready = False

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise ProvenanceError(f"cannot open the provenance store {self.path}: {err}") from err
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if not self._ready:
                # journal_mode=WAL is persistent in the file; setting it again is cheap.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            yield conn
        finally:
            conn.close()

    def _retry(self, op: Callable[[sqlite3.Connection], T]) -> T:
        delay = 0.01
        for attempt in range(RETRIES):
            try:
                with self._connect() as conn:
                    return op(conn)
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or attempt == RETRIES - 1:
                    raise ProvenanceError(
                        f"the provenance store {self.path} is unavailable"
                        + (" (busy: another process holds it)" if _is_busy(err) else f": {err}")
                    ) from err
                self._ready = False  # the schema step may be what failed
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
            except sqlite3.DatabaseError as err:
                raise ProvenanceError(
                    f"the provenance store {self.path} is damaged ({err}): move it aside"
                ) from err
        raise AssertionError("unreachable")

    def record(
        self,
        *,
        sha256: str,
        manifest: str | dict,
        file_name: str,
        payload_hex: str | None = None,
        content_id: int | None = None,
        key_id: int | None = None,
    ) -> Record:
        manifest_text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row = (content_id, payload_hex, key_id, sha256, manifest_text, file_name, created)

        def insert(conn: sqlite3.Connection) -> int:
            # BEGIN IMMEDIATE takes the write lock up front (waiting under busy_timeout)
            # rather than failing on upgrade from a read lock mid-transaction.
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO records (content_id, payload_hex, key_id, sha256, manifest,"
                    " file_name, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)

        row_id = self._retry(insert)
        return Record(row_id, *row)

    def _one(self, where: str, value: object) -> Record | None:
        def query(conn: sqlite3.Connection) -> Record | None:
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE {where} = ? ORDER BY id DESC LIMIT 1",
                (value,),
            ).fetchone()
            return Record(*found) if found else None

        if not self.path.exists():
            return None  # reading must not create the store
        return self._retry(query)

    def lookup_payload(self, payload: object) -> Record | None:
        """Latest record for a watermark payload (a `Payload` or its hex)."""
        return self._one("payload_hex", payload_to_hex(payload))

    def lookup_sha256(self, sha256: str) -> Record | None:
        return self._one("sha256", sha256.lower())

    def count(self) -> int:
        if not self.path.exists():
            return 0
        return self._retry(lambda conn: conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def payload_to_hex(payload: object) -> str:
    """The 8-byte payload as 16 hex digits: content id (48 bits) then key id (16 bits).

    Accepts a hex string or anything with `content_id` and `key_id` (the watermark's
    `Payload`), so the store does not depend on the watermark package.
    """
    if isinstance(payload, str):
        text = payload.strip().lower()
        bytes.fromhex(text)  # raises ValueError on junk
        return text
    content_id = int(payload.content_id)
    key_id = int(payload.key_id)
    if not (0 <= content_id < 1 << 48 and 0 <= key_id < 1 << 16):
        raise ValueError("payload out of range")
    return f"{content_id:012x}{key_id:04x}"


def record(**fields: object) -> Record:
    return Store().record(**fields)


def lookup_payload(payload: object) -> Record | None:
    return Store().lookup_payload(payload)


def lookup_sha256(sha256: str) -> Record | None:
    return Store().lookup_sha256(sha256)
