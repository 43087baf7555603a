"""Task keys: the Dask key of one task call, its text form, and its logical form.

A task call of a flow run has three names, all made and read here and nowhere else:

- the **Dask key** `(f"{slug}-{run_token}", index)`: unique per run and per flow attempt (the run
  token is `run_id[:8]` + the attempt number), so two runs or two attempts never share a key, and
  Dask's dashboard groups keys by the task's slug (the word before the token, which holds a digit);
- its **text** `slug-token[index]`, the form the run history stores and the CLI shows;
- its **logical key** `slug[index]`: the n-th call of that task in the run, the same for every
  attempt; what resume matches on.

`index` counts the calls of that task in the run (a `.map` over N items takes N indices), so keys
are deterministic for a deterministic flow body.
"""

from __future__ import annotations

import re

Key = tuple[str, int]  # a Dask key of a task call: (name with run token, index)

_SLUG_BAD = re.compile(r"[^a-z0-9_]+")


def slugify(name: str) -> str:
    """A task name as the first word of a Dask key: no '-', lower case, never empty.

    Dask's dashboard groups keys by the text before the first '-' word that holds a digit, so a
    slug must not contain '-'; the run token that follows it always holds a digit.
    """
    slug = _SLUG_BAD.sub("_", name.lower()).strip("_")
    return slug or "task"


def run_token(run_id: str, attempt: int) -> str:
    """The part of a key that tells runs and flow attempts apart: `run_id[:8]` + attempt."""
    return f"{run_id[:8]}{attempt}"


def key_name(slug: str, token: str) -> str:
    """The name part of the Dask keys of one task in one flow attempt."""
    return f"{slug}-{token}"


def key_text(key: Key) -> str:
    """`extract-ab12cd341[4]`: the text form of a Dask key, as stored and shown."""
    return f"{key[0]}[{key[1]}]"


def parse_key(text: str) -> Key:
    """The Dask key a text form stands for; `ValueError` if `text` is not one."""
    name, bracket, rest = text.rpartition("[")
    if not bracket or not name or not rest.endswith("]") or not rest[:-1].isdigit():
        raise ValueError(f"{text!r} is not a task key such as 'extract-ab12cd341[4]'")
    return (name, int(rest[:-1]))


def slug_of(name: str) -> str:
    """The task slug in a key's name part: `extract-ab12cd341` -> `extract`."""
    return name.rpartition("-")[0] or name


def logical(text: str) -> str:
    """`extract-ab12cd341[3]` -> `extract[3]`: the same for every attempt of a run."""
    name, index = parse_key(text)
    return logical_of(name, index)


def logical_of(name: str, index: int) -> str:
    """The logical key of the Dask key `(name, index)`: `task[index]`."""
    return f"{slug_of(name)}[{index}]"


def attempt_of(name: str) -> int:
    """The flow attempt a Dask key's name belongs to (its run token is `run_id[:8]` + attempt)."""
    token = name.rpartition("-")[2]
    return int(token[8:]) if token[8:].isdigit() else 0
