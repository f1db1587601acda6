"""Read-only HTTP status API over the task tracking tables (FastAPI).

``create_app(store_url)``; run with ``python -m candleflow.status_api`` (binds 127.0.0.1:8080 by
default; the store URL from CANDLEFLOW_STORE_URL or ``--store-url-file PATH``). Endpoints:

    GET /health                      database reachable, schema revision
    GET /jobs/{run_id}               job status of the run chain (queries.job_status)
    GET /tasks/{domain}/{id}         one task
    GET /tasks/{domain}?status=&limit=&offset=
    GET /stats/{domain}              counts, success/failure, duration percentiles

Errors are JSON ``{"detail": "..."}``: 400 malformed input, 404 unknown run / task / domain (and
any other path; a trailing slash is not redirected), 500 ``internal error`` (the traceback is
logged server-side, never sent).
"""

from candleflow.status_api.app import create_app

__all__ = ["create_app"]
