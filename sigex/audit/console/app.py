"""The auditor's console over HTTP: Starlette, server-side Jinja2 templates, every asset shipped.

Pages are rendered on the server and read without JavaScript; only the
in-browser proof check (``static/proof.js``) and pinning the audit key
(``static/key.js``) need it. Every answer carries a strict
Content-Security-Policy (scripts and styles from this origin only, nothing
inline, no frames) and ``Cache-Control: no-store``. A BSN is only ever sent in
a POST body (search, report), so it is in no URL, no server log line and no
browser history; a POST must come from the console's own pages (its
``Origin``), so another site cannot make an auditor's browser ask questions
in the auditor's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigex.audit.console.charts import bars, columns, growth_line
from sigex.audit.console.consultations import ConsultationNotLogged
from sigex.audit.console.overview import BREAKDOWNS
from sigex.audit.console.service import (
    TEXT_FILTERS,
    AuditConsole,
    BadConsoleInput,
    ConsoleError,
    SearchForm,
)
from sigex.audit.console.usage import UsageThresholds
from sigex.audit.report_pdf import render_pdf
from sigex.audit.report_texts import LANGUAGES
from sigex.audit.tabular import csv_text
from sigex.exchange.access_record import EventKind, Outcome, format_time
from sigex.logs import get_logger

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
MAX_FORM_BYTES = 16 * 1024
STATIC = Path(__file__).parent / "static"
_log = get_logger(__name__)

#: Who is asking: the principal of a request (the certificate's party code), or None.
PrincipalOf = Callable[[Scope], str | None]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer (pages, assets and errors alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(n, v) for n, v in message.get("headers", []) if n not in names]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("sigex.audit.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["utc"] = lambda moment: format_time(moment)[:19].replace("T", " ")
    environment.filters["short"] = lambda text: f"{text[:12]}…" if text else ""
    return environment


class _Pages:
    """The console's handlers, over one :class:`AuditConsole`."""

    def __init__(self, console: AuditConsole, principal_of: PrincipalOf) -> None:
        self.console = console
        self.principal_of = principal_of
        self.templates = Jinja2Templates(env=_environment())

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"auditor": request.state.auditor, **context}, status_code=status
        )

    async def auditor_of(self, request: Request) -> str:
        principal = self.principal_of(request.scope)
        auditor = await run_in_threadpool(self.console.answering, self.console.authorise, principal)
        request.state.auditor = auditor
        return auditor

    async def form_of(self, request: Request) -> dict[str, str]:
        """The url-encoded form of a POST from the console's own pages."""
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        site = request.headers.get("sec-fetch-site", "same-origin")
        if origin != own or site not in ("same-origin", "none"):
            raise BadConsoleInput("this form must be sent from the console's own pages")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise BadConsoleInput("the form is too large")
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadConsoleInput("the form is not UTF-8") from None

    async def home(self, request: Request) -> Response:
        await self.auditor_of(request)
        return RedirectResponse("/overview", status_code=303)

    async def overview(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        since, until = request.query_params.get("since", ""), request.query_params.get("until", "")
        found = await run_in_threadpool(
            self.console.answering, self.console.overview, auditor, since, until
        )
        step = 640 / max(len(found.days), 1)
        return self.page(
            request,
            "overview.html",
            title="Overview",
            overview=found,
            last_day=(found.until - timedelta(days=1)).date(),
            day_columns=columns(found.days, step),
            column_width=max(step - 2, 1),
            breakdowns={name: bars(found.breakdowns[name]) for name in BREAKDOWNS},
        )

    def search_page(self, request: Request, status: int = 200, **context: Any) -> Response:
        return self.page(
            request,
            "search.html",
            status,
            title="Search",
            text_filters=TEXT_FILTERS,
            outcomes=[o.value for o in Outcome],
            kinds=[k.value for k in EventKind],
            **context,
        )

    async def search_form(self, request: Request) -> Response:
        await self.auditor_of(request)
        return self.search_page(request, form=SearchForm(), result=None)

    async def search(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        form = SearchForm.from_fields(await self.form_of(request))
        try:
            result = await run_in_threadpool(
                self.console.answering, self.console.search, auditor, form
            )
        except BadConsoleInput as refused:
            return self.search_page(request, 400, form=form, result=None, problem=str(refused))
        return self.search_page(
            request,
            form=SearchForm(**{**form.carried(result.subject), "bsn": ""}),
            result=result,
            carried=form.carried(result.subject),
        )

    async def export(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        form = SearchForm.from_fields(await self.form_of(request))

        def rows() -> str:
            return csv_text(self.console.export(auditor, form))

        text = await run_in_threadpool(self.console.answering, rows)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="access-records.csv"'},
        )

    async def record(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        leaf_index = int(request.path_params["leaf_index"])
        view = await run_in_threadpool(
            self.console.answering, self.console.record, auditor, leaf_index
        )
        return self.page(
            request,
            "record.html",
            title=f"Record {leaf_index}",
            view=view,
            record=view.stored.record,
            proof=view.proof_document(),
        )

    async def health(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        found = await run_in_threadpool(self.console.answering, self.console.health, auditor)
        sizes = [c.checkpoint.tree_size for c in found.checkpoints]
        return self.page(
            request, "health.html", title="Log health", health=found, growth=growth_line(sizes)
        )

    async def verify(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        await self.form_of(request)
        await run_in_threadpool(self.console.answering, self.console.verify_now, auditor)
        return RedirectResponse("/health", status_code=303)

    async def usage(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        params = request.query_params
        thresholds = _thresholds(params)
        since, until = params.get("since", ""), params.get("until", "")
        found = await run_in_threadpool(
            self.console.answering, self.console.usage, auditor, thresholds, since, until
        )
        last_day = (found.until - timedelta(days=1)).date()
        return self.page(
            request, "usage.html", title="Usage reports", usage=found, last_day=last_day
        )

    async def report_form(self, request: Request) -> Response:
        await self.auditor_of(request)
        return self.page(
            request, "report_form.html", title="Article 15 report", languages=LANGUAGES
        )

    async def report(self, request: Request) -> Response:
        auditor = await self.auditor_of(request)
        fields = await self.form_of(request)
        language = fields.get("lang", "nl")
        if language not in LANGUAGES:
            raise BadConsoleInput("language: nl or en")
        answer = await run_in_threadpool(
            self.console.answering,
            self.console.article_fifteen,
            auditor,
            fields.get("bsn", "").strip(),
            language,
        )
        if fields.get("format") == "pdf":
            content = await run_in_threadpool(render_pdf, answer.document)
            return Response(
                content,
                media_type="application/pdf",
                headers={"content-disposition": 'attachment; filename="avg-15-overzicht.pdf"'},
            )
        return self.templates.TemplateResponse(
            request, "report.html", {"document": answer.document, "auditor": auditor}
        )

    async def key(self, request: Request) -> Response:
        await self.auditor_of(request)
        return self.page(request, "key.html", title="Audit key")

    async def no_icon(self, request: Request) -> Response:
        return Response(status_code=204)

    async def livez(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def refused(self, request: Request, error: Exception) -> Response:
        status = error.status if isinstance(error, ConsoleError) else 503
        message = str(error)
        _log.info(
            "console_refused", path=request.url.path, status=status, error=type(error).__name__
        )
        auditor = getattr(request.state, "auditor", None)
        return self.templates.TemplateResponse(
            request,
            "problem.html",
            {"auditor": auditor, "title": "Not answered", "message": message, "status": status},
            status_code=status,
        )

    async def not_found(self, request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 404
        return PlainTextResponse("not found\n" if status == 404 else "not allowed\n", status)


def create_console_app(console: AuditConsole, principal_of: PrincipalOf) -> ASGIApp:
    """The console as an ASGI app; ``principal_of`` says who sent a request."""
    pages = _Pages(console, principal_of)
    routes = [
        Route("/", pages.home),
        Route("/overview", pages.overview),
        Route("/search", pages.search_form, methods=["GET"]),
        Route("/search", pages.search, methods=["POST"]),
        Route("/search.csv", pages.export, methods=["POST"]),
        Route("/records/{leaf_index:int}", pages.record),
        Route("/health", pages.health),
        Route("/health/verify", pages.verify, methods=["POST"]),
        Route("/usage", pages.usage),
        Route("/report", pages.report_form, methods=["GET"]),
        Route("/report", pages.report, methods=["POST"]),
        Route("/key", pages.key),
        Route("/livez", pages.livez),
        Route("/favicon.ico", pages.no_icon),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ConsoleError: pages.refused,
            ConsultationNotLogged: pages.refused,
            HTTPException: pages.not_found,
        },
    )
    return SecurityHeaders(app)


def _thresholds(params: Mapping[str, str]) -> UsageThresholds:
    defaults = UsageThresholds()

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = params.get(name, "")
        if not raw:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise BadConsoleInput(f"{name.replace('_', ' ')}: a whole number from {low} to {high}")
        return int(raw)

    return UsageThresholds(
        per_person=number("per_person", defaults.per_person, 1, 100_000),
        working_hours=(
            number("day_starts", defaults.working_hours[0], 0, 23),
            number("day_ends", defaults.working_hours[1], 1, 24),
        ),
        weekends_unusual=params.get("weekends", "on" if defaults.weekends_unusual else "") == "on",
        unusual_minimum=number("unusual_minimum", defaults.unusual_minimum, 1, 100_000),
        refusals_per_day=number("refusals_per_day", defaults.refusals_per_day, 1, 1_000_000),
    )
