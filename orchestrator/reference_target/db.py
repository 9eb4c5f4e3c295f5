"""Embedded SQLite store for the reference target: users, sessions, transcriptions, textbooks."""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)

SEED_EMAIL = "test@example.com"
SEED_PASSWORD = "TestPassword123!"  # noqa: S105 - public fixture credential, not a secret
# Deliberately tiny: the target should spend its time on I/O shape, not on key stretching.
PBKDF2_ITERATIONS = 1000

TEXTBOOKS = 3
CHAPTERS_PER_TEXTBOOK = 5
SECTIONS_PER_CHAPTER = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL,
    password_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    user_email TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transcriptions (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    words INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS textbooks (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chapters (
    id INTEGER PRIMARY KEY,
    textbook_id INTEGER NOT NULL REFERENCES textbooks(id),
    position INTEGER NOT NULL,
    title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY,
    chapter_id INTEGER NOT NULL REFERENCES chapters(id),
    position INTEGER NOT NULL,
    title TEXT NOT NULL
);
"""

_TABLES = frozenset({"users", "sessions", "transcriptions", "textbooks", "chapters", "sections"})

_HIERARCHY_QUERY = """
SELECT t.id, t.title, c.id, c.title, s.id, s.title
FROM textbooks t
JOIN chapters c ON c.textbook_id = t.id
JOIN sections s ON s.chapter_id = c.id
ORDER BY t.id, c.position, s.position
"""


def _positions(count: int) -> range:
    return range(1, count + 1)


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)


@dataclass(frozen=True)
class UserRecord:
    email: str
    salt: bytes
    password_hash: bytes


class Database:
    """One SQLite connection shared by worker threads; the lock serialises every statement.

    The target's queries are sub-millisecond, so a single locked connection is simpler and
    no slower than a pool, and it also works for the default in-memory database, which
    cannot be shared between connections.
    """

    def __init__(self, path: str | None = None) -> None:
        self._path = path or ":memory:"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._configure()
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._seed()
        LOG.debug("database ready at %s", self._path)

    def _configure(self) -> None:
        if self._path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")

    def _seed(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._seed_user()
                self._seed_textbooks()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _seed_user(self) -> None:
        salt = secrets.token_bytes(16)
        self._conn.execute(
            "INSERT OR IGNORE INTO users (email, salt, password_hash) VALUES (?, ?, ?)",
            (SEED_EMAIL, salt, hash_password(SEED_PASSWORD, salt)),
        )

    def _seed_textbooks(self) -> None:
        # A reused file DB keeps its catalogue; seeding twice would double the hierarchy.
        if self._conn.execute("SELECT 1 FROM textbooks LIMIT 1").fetchone():
            return
        for t in _positions(TEXTBOOKS):
            book = self._insert("INSERT INTO textbooks (title) VALUES (?)", (f"Textbook {t}",))
            for c in _positions(CHAPTERS_PER_TEXTBOOK):
                self._seed_chapter(book, f"{t}.{c}", c)

    def _seed_chapter(self, book: int, label: str, position: int) -> None:
        chapter = self._insert(
            "INSERT INTO chapters (textbook_id, position, title) VALUES (?, ?, ?)",
            (book, position, f"Chapter {label}"),
        )
        self._conn.executemany(
            "INSERT INTO sections (chapter_id, position, title) VALUES (?, ?, ?)",
            [(chapter, s, f"Section {label}.{s}") for s in _positions(SECTIONS_PER_CHAPTER)],
        )

    def _insert(self, sql: str, params: tuple[Any, ...]) -> int:
        row_id = self._conn.execute(sql, params).lastrowid
        assert row_id is not None
        return row_id

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def find_user(self, email: str) -> UserRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT email, salt, password_hash FROM users WHERE email = ?", (email,)
            ).fetchone()
        return None if row is None else UserRecord(row[0], row[1], row[2])

    def insert_session(self, user_email: str | None) -> int:
        with self._lock:
            return self._insert(
                "INSERT INTO sessions (user_email, created_at) VALUES (?, ?)",
                (user_email, time.time()),
            )

    def session_owner(self, session_id: int) -> tuple[str | None] | None:
        """(user email,) of an issued session, else None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT user_email FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return None if row is None else (row[0],)

    def insert_transcription(self, text: str, words: int) -> int:
        with self._lock:
            return self._insert(
                "INSERT INTO transcriptions (text, words, created_at) VALUES (?, ?, ?)",
                (text, words, time.time()),
            )

    def count(self, table: str) -> int:
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}")
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    def textbook_hierarchy(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(_HIERARCHY_QUERY).fetchall()
        return _nest(rows)


def _nest(rows: list[tuple[int, str, int, str, int, str]]) -> list[dict[str, Any]]:
    books: dict[int, dict[str, Any]] = {}
    chapters: dict[int, dict[str, Any]] = {}
    for book_id, book_title, chapter_id, chapter_title, section_id, section_title in rows:
        if book_id not in books:
            books[book_id] = {"id": book_id, "title": book_title, "chapters": []}
        if chapter_id not in chapters:
            chapters[chapter_id] = {"id": chapter_id, "title": chapter_title, "sections": []}
            books[book_id]["chapters"].append(chapters[chapter_id])
        chapters[chapter_id]["sections"].append({"id": section_id, "title": section_title})
    return list(books.values())
