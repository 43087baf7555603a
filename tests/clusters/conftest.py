"""Fixtures for the cluster tests: real Dask processes, cleaned up by pid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dask_procs import DaskProcesses

from dagflow import clusters


@pytest.fixture
def dask_procs(tmp_path: Path) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        if procs.port:
            clusters.close(procs.address)
        procs.stop()


@pytest.fixture
def scheduler_with_worker(dask_procs: DaskProcesses) -> DaskProcesses:
    dask_procs.start_scheduler()
    dask_procs.add_worker()
    dask_procs.wait_for_workers(1)
    return dask_procs
