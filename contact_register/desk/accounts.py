"""Desk accounts and sessions, kept in the register's database (SQLite or PostgreSQL through
its backend) in tables of their own, created when the desk opens the register.

Passwords are argon2id hashes (argon2-cffi). A session is an opaque random token in an
HttpOnly, SameSite=Strict cookie; the database keeps only its SHA-256, so a copy of the
register does not hand out live sessions. Sessions end on logout, after ``SESSION_IDLE`` without
a request and after ``SESSION_MAX`` in any case. Each session has its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contact_register.requests.cases import Register, RegisterError

ROLES = ("officer", "viewer")
SESSION_MAX = timedelta(hours=8)
SESSION_IDLE = timedelta(minutes=30)
MIN_PASSWORD = 12
_HASHER = PasswordHasher()
# Compared against when the user does not exist, so that answer takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))

DDL = [
    """CREATE TABLE IF NOT EXISTS desk_accounts (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('officer', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS desk_sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL REFERENCES desk_accounts (username),
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL
    )""",
]


@dataclass(frozen=True)
class Session:
    username: str
    role: str
    csrf: str

    @property
    def officer(self) -> bool:
        return self.role == "officer"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_tables(register: Register) -> None:
    with register.backend.transaction() as tx:
        for stmt in DDL:
            tx.execute(stmt)


def create_account(register: Register, username: str, password: str, *, role: str = "officer") -> None:
    """Add an account; the name is also the actor in the audit trail (as the CLI's --actor)."""
    if role not in ROLES:
        raise RegisterError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise RegisterError("user name: 1-64 letters, digits, '.', '-' or '_'")
    if len(password) < MIN_PASSWORD:
        raise RegisterError(f"password: at least {MIN_PASSWORD} characters")
    ensure_tables(register)
    with register.backend.transaction() as tx:
        if tx.one("SELECT 1 FROM desk_accounts WHERE username = ?", [username]):
            raise RegisterError(f"user {username} exists already")
        tx.execute("INSERT INTO desk_accounts (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                   [username, role, _HASHER.hash(password), _now().isoformat(timespec="seconds")])
        register._audit(tx, None, username, "desk_account_created", {"role": role})


def login(register: Register, username: str, password: str) -> str | None:
    """A new session's token for a right user name and password, else None."""
    with register.backend.transaction() as tx:
        row = tx.one("SELECT password_hash FROM desk_accounts WHERE username = ?", [username])
    try:
        _HASHER.verify(row[0] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    token = secrets.token_urlsafe(32)
    now = _now().isoformat(timespec="seconds")
    with register.backend.transaction() as tx:
        tx.execute("INSERT INTO desk_sessions (token_hash, username, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                   [_token_hash(token), username, secrets.token_urlsafe(32), now, now])
        # Expired sessions of anyone are removed here, so the table does not grow.
        tx.execute("DELETE FROM desk_sessions WHERE created_at < ? OR last_seen < ?",
                   [(_now() - SESSION_MAX).isoformat(timespec="seconds"),
                    (_now() - SESSION_IDLE).isoformat(timespec="seconds")])
    return token


def session(register: Register, token: str | None) -> Session | None:
    """The live session of ``token`` (its idle clock restarted), or None."""
    if not token or len(token) > 200:
        return None
    now = _now()
    with register.backend.transaction() as tx:
        row = tx.one("SELECT s.username, a.role, s.csrf, s.created_at, s.last_seen FROM desk_sessions s "
                     "JOIN desk_accounts a ON a.username = s.username WHERE s.token_hash = ?", [_token_hash(token)])
        if row is None:
            return None
        if (now - datetime.fromisoformat(row[3]) > SESSION_MAX
                or now - datetime.fromisoformat(row[4]) > SESSION_IDLE):
            tx.execute("DELETE FROM desk_sessions WHERE token_hash = ?", [_token_hash(token)])
            return None
        tx.execute("UPDATE desk_sessions SET last_seen = ? WHERE token_hash = ?",
                   [now.isoformat(timespec="seconds"), _token_hash(token)])
    return Session(row[0], row[1], row[2])


def logout(register: Register, token: str | None) -> None:
    if token:
        with register.backend.transaction() as tx:
            tx.execute("DELETE FROM desk_sessions WHERE token_hash = ?", [_token_hash(token)])


def csrf_ok(sess: Session, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(sess.csrf, given)
