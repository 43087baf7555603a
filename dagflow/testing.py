"""Helpers for testing your own flows: run them in-process, with a throwaway run history.

`local_flows()` points every flow run started inside it at the in-process `local-threads` cluster
(workers are threads of the test process: no ports to clean up, quick to start, shared by every
test of the process) and at a temporary `DAGFLOW_HOME`, so run history and files written under it
stay out of `~/.dagflow`. It sets the environment variables dagflow reads and restores them on
exit, which makes it process-wide: do not use it from concurrent threads.

    from dagflow.testing import local_flows

    def test_my_flow(tmp_path):
        with local_flows(tmp_path):
            run = my_flow.run(rows=10)
        assert run.state.is_success

or once for a whole test module, in a fixture:

    @pytest.fixture(autouse=True)
    def _dagflow(tmp_path):
        with local_flows(tmp_path) as home:
            yield home

Tasks themselves need no cluster at all: call a task outside a flow and it runs in-process with
its retries, or call `my_task.fn(...)` for the plain function.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagflow.settings import CLUSTER as ENV_CLUSTER
from dagflow.settings import DATABASE_URL as ENV_DATABASE_URL
from dagflow.settings import HOME as ENV_HOME

__all__ = ["local_flows"]


@contextlib.contextmanager
def local_flows(
    home: str | os.PathLike[str] | None = None, *, cluster: str = "local-threads"
) -> Iterator[Path]:
    """Run flows started inside the block on `cluster`, recording under a temporary home.

    `home` is the `DAGFLOW_HOME` to use (created if missing, left in place); by default a new
    temporary directory, deleted on exit. `DAGFLOW_DATABASE_URL` is unset inside the block so
    runs are recorded in the SQLite file under `home`. Yields the home directory.
    """
    if not isinstance(cluster, str) or not cluster.strip():
        raise ValueError(f"local_flows: cluster must be a cluster name, got {cluster!r}")
    own_dir = home is None
    if home is None:
        path = Path(tempfile.mkdtemp(prefix="dagflow-test-"))
    else:
        path = Path(home)
        path.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.get(name) for name in (ENV_CLUSTER, ENV_HOME, ENV_DATABASE_URL)}
    os.environ[ENV_CLUSTER] = cluster.strip()
    os.environ[ENV_HOME] = str(path)
    os.environ.pop(ENV_DATABASE_URL, None)
    try:
        yield path
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)
