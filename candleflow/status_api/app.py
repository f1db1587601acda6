"""The FastAPI application of the status API (see the package docstring)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from candleflow.store.store import make_engine
from candleflow.tracking import queries
from candleflow.tracking.models import UnknownDomain

log = logging.getLogger("candleflow.status_api")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def create_app(store_url: str) -> FastAPI:
    missing = queries.missing_sqlite_store(store_url)
    if missing:
        raise FileNotFoundError(f"store database not found: {missing}")
    engine = make_engine(store_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        engine.dispose()

    # No trailing-slash redirect: its Location would be built from the request's Host header.
    app = FastAPI(title="candleflow status", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, debug=False, lifespan=lifespan, redirect_slashes=False)
    app.state.engine = engine

    @app.exception_handler(queries.InvalidArgument)
    async def _invalid(_request: Request, exc: queries.InvalidArgument) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, _exc: RequestValidationError) -> JSONResponse:
        return _error(400, "malformed request")

    @app.exception_handler(UnknownDomain)
    async def _unknown_domain(_request: Request, exc: UnknownDomain) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(queries.TaskNotFound)
    @app.exception_handler(queries.RunNotFound)
    async def _not_found(_request: Request, exc: LookupError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("status API: unhandled error on %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return _error(500, "internal error")

    @app.get("/health")
    def health() -> JSONResponse:
        from candleflow.store.migrate import current_revision

        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = current_revision(engine)
        except Exception:  # noqa: BLE001 - reported as unavailable, logged here
            log.warning("status API: database unreachable", exc_info=True)
            return JSONResponse(status_code=503, content={"status": "unavailable",
                                                          "detail": "database unreachable"})
        return JSONResponse({"status": "ok", "database": engine.dialect.name, "schema_revision": revision})

    @app.get("/jobs/{run_id}")
    def job(run_id: str) -> dict:
        return queries.job_status(engine, queries.parse_run_id(run_id))

    @app.get("/tasks/{domain}/{task_id}")
    def task(domain: str, task_id: str) -> dict:
        domain = queries.parse_domain(domain)
        return queries.get_task(engine, domain, queries.parse_task_id(task_id))

    @app.get("/tasks/{domain}")
    def tasks(domain: str, status: str | None = None, limit: str | None = None,
              offset: str | None = None) -> dict:
        domain = queries.parse_domain(domain)
        return queries.list_tasks(engine, domain, queries.parse_status(status), queries.parse_limit(limit),
                                  queries.parse_offset(offset))

    @app.get("/stats/{domain}")
    def stats(domain: str) -> dict:
        return queries.domain_stats(engine, queries.parse_domain(domain))

    return app
