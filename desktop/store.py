"""Conversation history in SQLite (stdlib ``sqlite3``) under the user data dir.

Two tables, ``conversations`` (one list per tab) and ``messages`` (``role`` is
``"user"``, ``"assistant"`` or ``"error"``; ``payload`` holds the rich reply as
JSON, see :mod:`desktop.records`). Each message is written, in its own
transaction, when it completes, so a crash of the app loses at most the one
in flight (the write-ahead log makes each commit cheap enough for the GUI thread).
The schema version is SQLite's ``user_version``. Qt-free; used from the GUI
thread only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
FILE_NAME = "history.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id       INTEGER PRIMARY KEY,
    tab      TEXT NOT NULL,
    title    TEXT NOT NULL,
    created  REAL NOT NULL,
    updated  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'error')),
    text            TEXT NOT NULL,
    payload         TEXT NOT NULL DEFAULT '{}',
    created         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_tab ON conversations(tab, updated);
"""


class StoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class Conversation:
    id: int
    tab: str
    title: str
    created: float
    updated: float


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


def default_path() -> Path:
    from nlpcore.assets import user_data_dir

    return user_data_dir() / FILE_NAME


class HistoryStore:
    """Open (creating if needed) the history database at ``path`` (``":memory:"`` for none on disk)."""

    def __init__(self, path: str | Path | None = None):
        path = default_path() if path is None else path
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path))
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        # Write-ahead log without a sync per commit: a commit survives an app crash and costs
        # no disk flush on the GUI thread (the OS flushes the log).
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: history was written by a newer Malbeot (schema {version})")
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -------------------------------------------------------------- conversations
    def conversations(self, tab: str) -> list[Conversation]:
        """The tab's conversations, most recently updated first."""
        rows = self._db.execute(
            "SELECT id, tab, title, created, updated FROM conversations WHERE tab = ? ORDER BY updated DESC, id DESC",
            (tab,),
        )
        return [Conversation(**dict(r)) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        row = self._db.execute(
            "SELECT id, tab, title, created, updated FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no conversation {conversation_id}")
        return Conversation(**dict(row))

    def create(self, tab: str, title: str) -> Conversation:
        now = time.time()
        with self._db:
            cur = self._db.execute(
                "INSERT INTO conversations (tab, title, created, updated) VALUES (?, ?, ?, ?)", (tab, title, now, now)
            )
        return Conversation(cur.lastrowid, tab, title, now, now)

    def rename(self, conversation_id: int, title: str) -> None:
        with self._db:
            self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, conversation_id: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def clear(self, conversation_id: int) -> None:
        """Remove every message of a conversation, keeping the conversation."""
        with self._db:
            self._db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))

    # -------------------------------------------------------------- messages
    def add_message(self, conversation_id: int, role: str, text: str, payload: dict[str, Any] | None = None) -> Message:
        now = time.time()
        body = json.dumps(payload or {}, ensure_ascii=False)
        with self._db:
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, role, text, payload, created) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, role, text, body, now),
            )
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return Message(cur.lastrowid, conversation_id, role, text, payload or {}, now)

    def delete_message(self, message_id: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, conversation_id, role, text, payload, created FROM messages "
            "WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        out = []
        for r in rows:
            try:
                payload = json.loads(r["payload"])
            except json.JSONDecodeError:
                payload = {}
            out.append(Message(r["id"], r["conversation_id"], r["role"], r["text"], payload, r["created"]))
        return out
