"""The engine: runs a flow on a Dask client.

```
runner.py     FlowRunner: a run's lifecycle (attempts, retries, timeout, Ctrl-C, final state)
attempt.py    FlowAttempt: one execution of the body; submits waves, resolves futures, settles
compiler.py   pending calls -> one HighLevelGraph of CallLayers (layers.py) per wave
batches.py    which maps run in chunks and how large (probes, measured sizes; core/batching.py)
chunks.py     a chunk of map items: run_chunk on workers, ItemFuture on the driver
wrapper.py    TaskCall: what a worker runs per task (upstreams, cache, retries, reports)
retrying.py   the retry loop and timeouts of task calls (also for calls outside a flow)
outbox.py     a worker's batched reports to the driver, over Dask topics
tracker.py    RunTracker: reports -> the run machine (core/machine.py) -> sinks, hooks
results.py    result storage (fsspec); caching.py cache keys; shipping.py code by value
logs.py, printing.py    run loggers and log_prints
```

Importing the engine registers nothing and loads no database code; `distributed` is imported by
the modules that talk to a client (runner, attempt) and, on workers, inside the wrapper's call.
"""
