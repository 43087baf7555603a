"""The keys secrets are encrypted with: `DAGFLOW_SECRET_KEY`, else a key file, as a MultiFernet.

- `DAGFLOW_SECRET_KEY` holds one Fernet key or several, comma-separated: the first encrypts,
  every one decrypts (MultiFernet), so a new key can be put in front of the old one and
  `dagflow secrets rotate-key` re-encrypts every value with it.
- Without it, the keys are the lines of `DAGFLOW_HOME/secret-key`, created (mode 0600) when the
  first secret is set. A file others may read is refused. `rotate-key` writes a new key in front
  of the old ones, re-encrypts, then leaves the new key alone in the file; a crash in between
  leaves a file whose keys still decrypt every value.

A missing, malformed or wrong key is one `SecretError` line saying which and what to do; a key
is never part of a message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from dagflow.errors import SecretError
from dagflow.settings import SECRET_KEY
from dagflow.store.settings import StoreSettings


class Keyring:
    """Where a store's secret keys come from, and the keys themselves when asked."""

    def __init__(self, settings: StoreSettings) -> None:
        self.from_env = settings.secret_key
        self.path = settings.key_file

    @property
    def source(self) -> str:
        return SECRET_KEY if self.from_env else str(self.path)

    def keys(self, create: bool = False) -> list[bytes] | None:
        """The keys, first the encrypting one; None when there are none (and not `create`)."""
        if self.from_env:
            return _parsed(self.from_env.split(","), SECRET_KEY)
        if self.path is None:
            return None
        try:
            return _read(self.path)
        except FileNotFoundError:
            pass
        if not create:
            return None
        key = Fernet.generate_key()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it at the same moment: use that one
            return _read(self.path)
        except OSError as exc:
            raise SecretError(
                f"cannot write the secret key file {self.path}: {exc.strerror}"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
        return [key]

    def fernet(self, create: bool = False) -> MultiFernet | None:
        keys = self.keys(create)
        return None if keys is None else MultiFernet([Fernet(k) for k in keys])

    def missing(self) -> SecretError:
        return SecretError(
            f"secrets are stored but there is no key to decrypt them: set {SECRET_KEY}, or put "
            f"back the key file {self.path} they were encrypted with"
        )

    def wrong(self, names: list[str]) -> SecretError:
        shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
        return SecretError(
            f"cannot decrypt secret {shown} with the key from {self.source}: it is not the key "
            "they were stored with"
        )

    def write_file(self, keys: list[bytes]) -> None:
        """Replace the key file's keys at once (write, fsync, rename), mode 0600."""
        assert self.path is not None and not self.from_env
        temporary = self.path.with_name(self.path.name + ".new")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(b"".join(k + b"\n" for k in keys))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise SecretError(
                f"cannot write the secret key file {self.path}: {exc.strerror}"
            ) from None


def _read(path: Path) -> list[bytes]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"{path} may be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"run chmod 600 {path}, or set {SECRET_KEY}"
        )
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise SecretError(f"the secret key file {path} is empty")
    return _parsed(lines, str(path))


def _parsed(texts: list[str], source: str) -> list[bytes]:
    keys = []
    for i, text in enumerate(texts, 1):
        key = text.strip().encode()
        try:
            Fernet(key)
        except (ValueError, TypeError):
            where = f"key {i} of {len(texts)} in {source}" if len(texts) > 1 else source
            raise SecretError(
                f"{where} is not a Fernet key (32 url-safe base64-encoded bytes; make one with: "
                'python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())")'
            ) from None
        keys.append(key)
    return keys
