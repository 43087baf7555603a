"""The REST API's routers, mounted under `/api/v1` by `dagflow.server.app`."""
