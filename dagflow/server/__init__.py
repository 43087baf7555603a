"""The dagflow server: the REST API and the pages over the run history, in one process.

```
app.py        create_app(store, token): FastAPI, middleware (CSP, headers), mounts, routers
serve.py      run it under uvicorn: bind, TLS, the warning for a non-loopback address
auth.py       the bearer token (DAGFLOW_API_TOKEN or DAGFLOW_HOME/server-token), page sessions
errors.py     dagflow's errors and bad input -> HTTP statuses, in one place
models.py     the API's pydantic bodies and responses (times ISO 8601 UTC)
routes/       /api/v1: health, flows, runs (task runs, history, logs, error, cancel)
pages/        HTML pages (Jinja2, escaped), their fragments, and the Bokeh charts (json_item)
templates/    the pages' HTML;  assets/  their CSS and JavaScript (no inline script anywhere)
```

FastAPI, uvicorn, Jinja2 and Bokeh are imported inside this package only, when the server starts:
`import dagflow` and the CLI's other commands never load them.
"""
