"""Secrets in the database: Fernet tokens of values, set, listed by name, removed, re-keyed.

A value is encrypted here before it is written (`secrets.token`) and decrypted only for a run's
driver (`decrypt_all`, when the run starts); nothing else reads it back: the CLI and the API
list names and times only. Every value of a database is encrypted with the same keys
(`secretkey.Keyring`); `rotate` re-encrypts all of them in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.config import MIN_MASKED, check_name
from dagflow.errors import NotFound, StoreError, UsageError
from dagflow.store.database import driver_reason, upsert_named
from dagflow.store.schema import secrets
from dagflow.store.secretkey import Keyring

MAX_VALUE_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's name and times: everything about it that is ever shown."""

    name: str
    created: float
    updated: float


def not_found(name: str) -> NotFound:
    return NotFound(f"no secret named {name!r} (set one with: dagflow secrets set {name})")


def checked(name: str, value: str) -> None:
    try:
        check_name("secret", name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(value, str) or not value:
        raise UsageError(f"secret {name!r}: the value is empty")
    if len(value) < MIN_MASKED:
        raise UsageError(
            f"secret {name!r}: the value is shorter than {MIN_MASKED} characters, too short to "
            "be masked in logs"
        )
    if len(value) > MAX_VALUE_CHARS:
        raise UsageError(
            f"secret {name!r}: the value is longer than {MAX_VALUE_CHARS:,} characters"
        )


def set_value(engine: Engine, keys: Keyring, name: str, value: str, now: float) -> None:
    checked(name, value)
    fernet = keys.fernet(create=True)
    assert fernet is not None
    token = fernet.encrypt(value.encode("utf-8")).decode("ascii")
    try:
        with engine.begin() as conn:
            _check_key(conn, keys, fernet)
            upsert_named(conn, secrets, "name", name, {"token": token}, now)
    except DBAPIError as exc:
        raise StoreError(f"setting secret {name!r} failed: {driver_reason(exc)}") from None


def _check_key(conn: Connection, keys: Keyring, fernet: MultiFernet) -> None:
    """Refuse to add a value under a key that cannot read the values already stored."""
    row = conn.execute(select(secrets.c.name, secrets.c.token).limit(1)).one_or_none()
    if row is None:
        return
    try:
        fernet.decrypt(row.token.encode("ascii"))
    except InvalidToken:
        raise keys.wrong([row.name]) from None


def listed(conn: Connection) -> list[SecretInfo]:
    rows = conn.execute(
        select(secrets.c.name, secrets.c.created, secrets.c.updated).order_by(secrets.c.name)
    )
    return [SecretInfo(r.name, r.created, r.updated) for r in rows]


def decrypt_all(conn: Connection, keys: Keyring) -> dict[str, str]:
    """Every secret's plain value, by name (for a run's driver); `SecretError` if the key is
    missing or wrong."""
    rows = conn.execute(select(secrets.c.name, secrets.c.token)).all()
    if not rows:
        return {}
    fernet = keys.fernet()
    if fernet is None:
        raise keys.missing()
    found: dict[str, str] = {}
    wrong: list[str] = []
    for name, token in rows:
        try:
            found[name] = fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            wrong.append(name)
    if wrong:
        raise keys.wrong(sorted(wrong))
    return found


def remove(engine: Engine, name: str) -> None:
    try:
        with engine.begin() as conn:
            gone = conn.execute(delete(secrets).where(secrets.c.name == name)).rowcount
    except DBAPIError as exc:
        raise StoreError(f"removing secret {name!r} failed: {driver_reason(exc)}") from None
    if gone != 1:
        raise not_found(name)


def rotate(engine: Engine, keys: Keyring) -> int:
    """Re-encrypt every value with the first key; with a key file, a new key first.

    Returns how many values were re-encrypted.
    """
    from cryptography.fernet import Fernet

    old = keys.keys()
    file_based = not keys.from_env
    if old is None:
        if not file_based:
            raise keys.missing()
        old = []
    new = [Fernet.generate_key(), *old] if file_based else old
    if file_based:
        keys.write_file(new)  # both keys first: whatever happens next, every value decrypts
    fernet = MultiFernet([Fernet(k) for k in new])
    try:
        with engine.begin() as conn:
            rows = conn.execute(select(secrets.c.name, secrets.c.token)).all()
            wrong = []
            for name, token in rows:
                try:
                    fresh = fernet.rotate(token.encode("ascii")).decode("ascii")
                except InvalidToken:
                    wrong.append(name)
                    continue
                conn.execute(update(secrets).where(secrets.c.name == name).values(token=fresh))
            if wrong:
                raise keys.wrong(sorted(wrong))  # rolls back: nothing re-encrypted
    except DBAPIError as exc:
        raise StoreError(f"re-encrypting the secrets failed: {driver_reason(exc)}") from None
    if file_based:
        keys.write_file(new[:1])
    return len(rows)
