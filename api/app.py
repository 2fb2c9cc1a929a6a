"""The FastAPI application of the fit service: /v1 routes, OpenAPI at /openapi.json, the admission and the gate in
front of them (api/gate.py: key, share, upload limit, slots), and one error shape (`ErrorBody`) for every refusal."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from api.access import record_refusal
from api.db import DATABASE_AWAY, DATABASE_RETRY_S, open_service_db
from api.fitting import Fitting
from api.gate import Admission, ConcurrencyGate
from api.learning import Learning
from api.batch import Batch
from api.fit_index import FitIndex
from api.mailing import MailingRunner
from api.pages import mount_pages
from api.routes import v1_router
from api.scans import ScanJobs
from api.schemas import ErrorBody, FieldError
from core.errors import (
    CatalogError,
    Conflict,
    Forbidden,
    InvalidInput,
    MeasurementError,
    NotFound,
    ServiceError,
    Unauthenticated,
)
from core.settings import Settings, get_settings

STATUS = {Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, InvalidInput: 422}


def create_app(database_url: str | None = None, settings: Settings | None = None,
               engine: Engine | None = None) -> FastAPI:
    """The service on the settings' database (or `database_url`), migrated before the first request. It opens no
    scanner: kiosk scans run on the rigs' agents in the stores (api/scans.py)."""
    settings = settings or get_settings()
    engine = engine or open_service_db(database_url or settings.database_url or None)
    app = FastAPI(title="footfit fit service", version="1",
                  description="Foot passports, recommendations and try-on for kiosks and webshops (docs/api.md).",
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.engine = engine
    app.state.settings = settings
    app.state.fitting = Fitting(engine, settings.service.passports_in_memory)
    app.state.scans = ScanJobs(settings.service)
    app.state.batch = Batch(settings.batch)
    app.state.learning = Learning(engine, app.state.fitting, settings.learning, settings.service.job_lease_s,
                                  app.state.batch)
    app.state.fit_index = FitIndex(app.state.fitting, app.state.learning, app.state.batch,
                                   settings.batch.chunk_passports)
    app.state.mailing = MailingRunner(engine, app.state.fitting, settings.service, app.state.fit_index)
    app.router.add_event_handler("startup", app.state.learning.start)  # the scheduled learning job
    app.router.add_event_handler("startup", app.state.mailing.start)  # jobs queued, or left by a process that died
    # queued jobs, fit preparations, the learning schedule and the batch cluster stop
    for background in (app.state.mailing, app.state.fitting, app.state.learning, app.state.batch):
        app.router.add_event_handler("shutdown", background.close)
    app.include_router(v1_router())
    mount_pages(app, settings.service.tryon_frame_ancestors)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(MeasurementError, _unprocessable)
    app.add_exception_handler(CatalogError, _unprocessable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OperationalError, _database_away)
    # the last added runs first: a request passes the admission (key, share, whole body), then the gate
    app.add_middleware(ConcurrencyGate, limit=settings.service.max_concurrent_requests)
    app.add_middleware(Admission, engine=engine, settings=settings.service)
    return app


def error_response(status: int, detail: str, errors: list[tuple[str, str]] = ()) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=[FieldError(location=loc, message=msg) for loc, msg in errors])
    return JSONResponse(body.model_dump(), status_code=status)


def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    record_refusal(request.scope, status)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    response = error_response(status, str(exc), getattr(exc, "errors", []))
    if headers:
        response.headers.update(headers)
    return response


def _unprocessable(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, str(exc))


def _database_away(_request: Request, _exc: OperationalError) -> JSONResponse:
    """The database went away mid-request (restarting, network): 503, and the pool reconnects by itself (each
    connection is checked before use), so the service needs no restart."""
    response = error_response(503, DATABASE_AWAY)
    response.headers["Retry-After"] = str(DATABASE_RETRY_S)
    return response


def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
    first = f"{errors[0][0]}: {errors[0][1]}" if errors else "the request is invalid"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return error_response(422, f"invalid request: {first}{more}; see docs/api.md for the request format", errors)

