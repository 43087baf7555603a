"""The Store's configuration methods: pauses for approval, variables, secrets, limits.

A mixin of `Store` (`store/__init__.py`), kept apart so that the facade stays readable: each
method is a thin call into the row module that owns its SQL (`pauses.py`, `variables.py`,
`secrets.py`, `limits.py`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine import Engine

from dagflow.core.config import RunConfig, masker_for
from dagflow.core.pauses import Pause, PauseStatus
from dagflow.errors import SecretError
from dagflow.store import limits as limit_rows
from dagflow.store import pauses as pause_rows
from dagflow.store import secrets as secret_rows
from dagflow.store import variables as variable_rows
from dagflow.store.limits import ConcurrencyLimit
from dagflow.store.reader import Reader
from dagflow.store.secretkey import Keyring
from dagflow.store.secrets import SecretInfo
from dagflow.store.variables import Variable


class ConfigMethods:
    """What runs read and approvers answer: pauses, variables, secrets, concurrency limits."""

    engine: Engine
    reader: Reader
    keys: Keyring

    # ------------------------------------------------------------------ pauses for approval
    # (`dagflow.core.pauses.PauseBoard`: the driver's side; `answer_pause`: an approver's)

    def open_pause(
        self,
        run_id: str,
        number: int,
        reason: str,
        input_schema: dict[str, Any] | None,
        deadline: float | None,
    ) -> None:
        pause_rows.open_pause(
            self.engine, run_id, number, reason, input_schema, deadline, time.time()
        )

    def read_pause(self, run_id: str, number: int) -> Pause:
        with self.reader.connect() as conn:
            return pause_rows.read(conn, run_id, number)

    def settle_pause(self, run_id: str, number: int, status: PauseStatus, error: str = "") -> None:
        pause_rows.settle(self.engine, run_id, number, status, error, time.time())

    def answer_pause(
        self, ref: str, approve: bool, value: Any = None, by: str = "", reason: str = ""
    ) -> Pause:
        """Approve (with the input `value`) or reject the open pause of run `ref`."""
        run_id = self.reader.resolve(ref)
        self.reader.detect_crashes([run_id])
        return pause_rows.answer(self.engine, run_id, approve, value, by, reason, time.time())

    def last_pause(self, ref: str) -> Pause | None:
        """The last pause of run `ref`, if it ever paused."""
        run_id = self.reader.resolve(ref)
        with self.reader.connect() as conn:
            return pause_rows.latest(conn, run_id)

    # ------------------------------------------------------------------ configuration

    def set_variable(self, name: str, value: object) -> None:
        """Set variable `name` to the JSON value `value` (made, or replaced)."""
        variable_rows.set_value(self.engine, name, value, time.time())

    def variable(self, name: str) -> Variable:
        """One variable; `NotFound` naming it if there is none."""
        with self.reader.connect() as conn:
            return variable_rows.get(conn, name)

    def variables(self) -> list[Variable]:
        """Every variable, by name."""
        with self.reader.connect() as conn:
            return variable_rows.listed(conn)

    def remove_variable(self, name: str) -> None:
        variable_rows.remove(self.engine, name)

    def set_secret(self, name: str, value: str) -> None:
        """Encrypt and store `value` as secret `name` (the key file is made on first use)."""
        secret_rows.set_value(self.engine, self.keys, name, value, time.time())

    def secrets(self) -> list[SecretInfo]:
        """Every secret's name and times (never a value)."""
        with self.reader.connect() as conn:
            return secret_rows.listed(conn)

    def remove_secret(self, name: str) -> None:
        secret_rows.remove(self.engine, name)

    def rotate_secret_key(self) -> int:
        """Re-encrypt every secret with a new key (or `DAGFLOW_SECRET_KEY`'s first); how many."""
        return secret_rows.rotate(self.engine, self.keys)

    def set_concurrency_limit(self, tag: str, slots: int) -> None:
        """At most `slots` task runs tagged `tag` at once (for runs started from now on)."""
        limit_rows.set_limit(self.engine, tag, slots, time.time())

    def concurrency_limits(self) -> list[ConcurrencyLimit]:
        with self.reader.connect() as conn:
            return limit_rows.listed(conn)

    def remove_concurrency_limit(self, tag: str) -> None:
        limit_rows.remove(self.engine, tag)

    def run_config(self) -> RunConfig:
        """What a run starting now reads: every variable, every secret decrypted, every
        concurrency limit (three queries).

        A key that cannot decrypt the secrets does not stop the run: reading a secret in it
        raises that error, and reading none works.
        """
        with self.reader.connect() as conn:
            values = variable_rows.all_values(conn)
            limits = limit_rows.all_limits(conn)
            try:
                plain = secret_rows.decrypt_all(conn, self.keys)
            except SecretError as exc:
                return RunConfig(values, {}, str(exc), limits=limits)
        return RunConfig(values, plain, None, masker_for(plain.values()), limits)
