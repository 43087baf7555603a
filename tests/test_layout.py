"""Modules stay small enough to read in one sitting: none of `dagflow/` is over 450 lines.

A module that grows past it has more than one job; split it (the Store's methods live in
mixins by subject, the run machine's wire forms and verdict beside it) rather than raise it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dagflow"
MAX_LINES = 450


def test_no_module_of_dagflow_is_over_450_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 100, sorted(sizes)
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}, f"split these modules (over {MAX_LINES} lines): {too_long}"
