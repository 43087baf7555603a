"""The docs say what the commands print: each console transcript of docs/clusters.md is run and
compared line for line, and each JSON example of docs/store.md has the fields the commands
print (read from a real recorded run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow.cli import main
from dagflow.store import StoreWriter, open_store
from tests.store.conftest import new_id, troubled_run_events

DOCS = Path(__file__).resolve().parents[1] / "docs"


def blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def transcripts() -> list[tuple[str, str, str]]:
    """(file content, command, expected output) of each `$ cat FILE` + `$ dagflow ...` block."""
    found = []
    for block in blocks("clusters.md", "console"):
        lines = block.splitlines()
        assert lines[0] == "$ cat clusters/lab.yaml", block
        command_at = next(i for i, line in enumerate(lines) if line.startswith("$ dagflow "))
        content = "\n".join(lines[1:command_at]) + "\n"
        found.append((content, lines[command_at][2:], "\n".join(lines[command_at + 1 :])))
    return found


@pytest.mark.parametrize(("content", "command", "expected"), transcripts())
def test_the_profile_errors_in_the_docs_are_what_dagflow_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, command: str, expected: str
) -> None:
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "lab.yaml").write_text(content)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command.split()[1:])
    assert result.exit_code == 2
    assert result.output.strip() == expected.strip()


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'dagflow.db'}"
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", url)
    store = open_store(url)
    writer = StoreWriter(store.url)
    run_id = new_id()
    writer.handle(troubled_run_events(run_id))
    writer.close(30)
    store.close()
    return run_id


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_json_documents_in_the_docs_have_the_fields_printed(recorded: str) -> None:
    ls_doc, show_doc, task_doc, log_doc, state_doc = (
        json.loads(b) for b in blocks("store.md", "json")
    )
    (listed,) = cli_json("runs", "ls", "--json")  # type: ignore[misc]
    assert set(ls_doc) == set(listed)
    shown = cli_json("runs", "show", recorded, "--json")
    assert isinstance(shown, dict)
    assert set(shown) == set(ls_doc) | set(show_doc)
    assert set(show_doc["tasks"][0]) == set(shown["tasks"][0])
    assert set(show_doc["history"][0]) == set(shown["history"][0])
    task = cli_json("runs", "show", recorded, "--task", "fetch", "--json")
    assert isinstance(task, dict)
    assert set(task) == set(show_doc["tasks"][0]) | set(task_doc)
    assert set(task_doc["history"][0]) == set(task["history"][0])
    lines = CliRunner().invoke(main, ["logs", recorded, "--json"]).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert {json.dumps(sorted(r)) for r in records} == {
        json.dumps(sorted(log_doc)),
        json.dumps(sorted(state_doc)),
    }
