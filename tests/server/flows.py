"""Flows the server's tests record: failures, retries, maps, logs at every level, slow ones."""

from __future__ import annotations

import logging
import time

from dagflow import flow, get_run_logger, task


@task(retries=1, retry_delay=0.05)
def flaky(i: int) -> int:
    get_run_logger().info("working on item %d", i)
    if i % 3 == 0:
        raise ValueError(f"item {i} is broken")
    return i


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(name="mapped")
def mapped(n: int = 6) -> int:
    """Items 0 and 3 fail after a retry (two attempts each); `total` is UPSTREAM_FAILED."""
    return total(flaky.map(range(n))).result()


@task
def square(i: int) -> int:
    return i * i


@flow(name="squares")
def squares(n: int = 4) -> int:
    return sum(f.result() for f in square.map(range(n)))


@task
def chatty(label: str) -> str:
    log = get_run_logger()
    log.debug("debug line for %s", label)
    log.info("needle in the haystack: %s", label)
    log.warning("careful with %s", label)
    log.error("an error line about %s", label)
    return label


@flow(name="noisy")
def noisy(label: str, note: str = "") -> str:
    get_run_logger().setLevel(logging.DEBUG)
    return chatty(label).result()


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@flow(name="sleepy")
def sleepy(n: int = 3, seconds: float = 0.5) -> float:
    return sum(f.result() for f in nap.map([seconds] * n))
