"""The desk's pages and forms (Starlette + Jinja2, server-rendered, no JavaScript).

Every page but the login page needs a session; without one, any URL answers with a redirect to
``/login``. Every form carries the session's CSRF token. URLs hold case ids only; identifiers
travel in POST bodies and are shown on pages sent with ``Cache-Control: no-store``. The actions
call the register (``contact_register.requests``) exactly as the command line does; the user
name is the actor in the audit trail.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from connectors.clock import today_helsinki
from contact_register.desk import accounts
from contact_register.desk.launch import BY_KIND, LAUNCHES, LaunchError, launch, run_status, ui_url
from contact_register.notify.notices import deadline_notice
from contact_register.requests.cases import CASE_KINDS, CaseNotFound, InvalidIdentifier, RegisterError, open_register
from contact_register.requests.cases.casebook import FOUR_EYES_ACTIONS, Register, four_eyes_on
from contact_register.requests.export.export import DEFAULT_EXPORT_DIR
from contact_register.requests.officer import ANSWERABLE_STATES, answer_task, open_case
from contact_register.requests.rectification.corrections import load_corrections
from contact_register.requests.restriction.store import record_lift_decision
from contact_register.warehouse.checks.freshness import parse_max_age, raw_store_syncs, utcnow

HERE = Path(__file__).parent
SESSION_COOKIE = "desk_session"
LOGIN_COOKIE = "desk_login"  # the login form's CSRF token (double submit: there is no session yet)
RUN_EVENT = "desk_run_launched"
DEFAULT_PORT = 3001
APPROVAL_ACTIONS = ("erasure", "rectification", "export")
log = logging.getLogger("contact_register.desk")

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    """Adds the security headers to every answer, and ``Cache-Control: no-store`` to every one
    but the style sheet (pages show identifiers, the export is personal data)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or static]
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Desk:
    def __init__(self, register: Register, *, export_dir: Path, raw_dir: Path, dagster_url: str) -> None:
        self.register = register
        self.export_dir = export_dir
        self.raw_dir = raw_dir
        self.dagster_url = dagster_url
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    # -- plumbing ------------------------------------------------------------------------

    def render(self, request: Request, name: str, sess: accounts.Session | None, status: int = 200, **context: Any):
        return self.templates.TemplateResponse(request, name, {"session": sess, **context}, status_code=status)

    def page(self, officer_only: bool = False) -> Callable:
        """Wraps a handler ``(request, session, form) -> Response``: no session -> /login; a POST
        without the session's CSRF token -> 403; a viewer on an officer's action -> 403. The
        handler runs in a worker thread (the register and Dagster calls block)."""

        def wrap(handler: Callable) -> Callable:
            @wraps(handler)
            async def endpoint(request: Request) -> Response:
                sess = await run_in_threadpool(accounts.session, self.register, request.cookies.get(SESSION_COOKIE))
                if sess is None:
                    return RedirectResponse("/login", status_code=303)
                form = None
                if request.method == "POST":
                    form = await request.form()
                    if not accounts.csrf_ok(sess, form.get("csrf")):
                        return PlainTextResponse("CSRF token missing or wrong: reload the page", status_code=403)
                if officer_only and not sess.officer:
                    return PlainTextResponse("officers only", status_code=403)
                try:
                    return await run_in_threadpool(handler, request, sess, form)
                except CaseNotFound:
                    return self.render(request, "message.html", sess, 404, message="no such case")

            return endpoint

        return wrap

    # -- login ---------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        if request.method == "POST":
            form = await request.form()
            given = form.get("csrf")
            if not (isinstance(given, str) and request.cookies.get(LOGIN_COOKIE)
                    and secrets.compare_digest(given, request.cookies[LOGIN_COOKIE])):
                return PlainTextResponse("CSRF token missing or wrong: reload the page", status_code=403)
            username, password = str(form.get("username") or ""), str(form.get("password") or "")
            session_token = await run_in_threadpool(accounts.login, self.register, username, password)
            if session_token:
                log.info("desk: login of %s", username)
                response = RedirectResponse("/", status_code=303)
                self._cookie(request, response, SESSION_COOKIE, session_token)
                response.delete_cookie(LOGIN_COOKIE)
                return response
            log.info("desk: failed login")
            response = self.render(request, "login.html", None, 401, csrf=token, failed=True)
        else:
            response = self.render(request, "login.html", None, csrf=token, failed=False)
        self._cookie(request, response, LOGIN_COOKIE, token)
        return response

    @staticmethod
    def _cookie(request: Request, response: Response, name: str, value: str) -> None:
        # Secure when served over TLS (behind the reverse proxy uvicorn trusts X-Forwarded-Proto).
        response.set_cookie(name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/")

    def logout(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        accounts.logout(self.register, request.cookies.get(SESSION_COOKIE))
        log.info("desk: logout of %s", sess.username)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages ---------------------------------------------------------------------------

    def queue(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        today = today_helsinki()
        rows = []
        for case in self.register.list_cases(status="open"):
            full = self.register.get(case.case_id)
            days = (date.fromisoformat(case.due_on) - today).days
            rows.append({"case": full, "days_left": days, "overdue": days < 0})
        return self.render(request, "queue.html", sess, rows=rows, today=today.isoformat())

    def new_case(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        if request.method == "GET":
            return self.render(request, "new_case.html", sess, kinds=CASE_KINDS, error=None, form={})
        given = {"emails": _lines(form.get("emails")), "phones": _lines(form.get("phones")),
                 "name": form.get("name") or None, "organization": form.get("organization") or None}
        corrections = {f: form.get(f"correct_{f}") for f in ("name", "email", "phone", "title")
                       if form.get(f"correct_{f}")}
        try:
            case = open_case(self.register, str(form.get("kind") or ""), given, actor=sess.username,
                             received_on=form.get("received") or None, note=form.get("note") or None,
                             corrections=corrections)
            if form.get("verified_method"):
                self.register.verify(case.case_id, method=str(form["verified_method"]), actor=sess.username)
        except (InvalidIdentifier, RegisterError) as exc:
            # The message names the field, never the value; the form keeps what was typed (no-store).
            return self.render(request, "new_case.html", sess, 400, kinds=CASE_KINDS, error=str(exc), form=form)
        log.info("desk: case %s opened by %s", case.case_id, sess.username)
        return RedirectResponse(f"/cases/{case.case_id}", status_code=303)

    def case_page(self, request: Request, sess: accounts.Session, form: Any, *, error: str | None = None,
                  status: int = 200) -> Response:
        case = self.register.get(request.path_params["case_id"], with_audit=True)
        runs = [dict(r["detail"], at=r["at"], actor=r["actor"]) for r in case.audit if r["action"] == RUN_EVENT]
        for run in runs:
            run["status"] = run_status(run["run_id"], base=self.dagster_url)
            run["url"] = f"{self.dagster_url}/runs/{run['run_id']}"
        approved = {a for a, *_ in case.approvals}
        launches = [dict(key=k, job=LAUNCHES[k].job, extra=dict(LAUNCHES[k].extra),
                         blocked=LAUNCHES[k].needs_approval and LAUNCHES[k].needs_approval not in approved)
                    for k in BY_KIND.get(case.kind, ())]
        corrections = load_corrections(self.register, case.case_id) if case.kind == "rectification" else {}
        answerable = [s for s, st in case.systems.items() if st.state in ANSWERABLE_STATES]
        four_eyes = four_eyes_on() and case.kind in FOUR_EYES_ACTIONS
        return self.render(request, "case.html", sess, status, case=case, runs=runs, launches=launches,
                           corrections=corrections, answerable=answerable, error=error,
                           approval_actions=APPROVAL_ACTIONS, four_eyes=four_eyes,
                           days_left=(date.fromisoformat(case.due_on) - today_helsinki()).days)

    def case_action(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        case_id, action = request.path_params["case_id"], request.path_params["action"]
        actor = sess.username
        try:
            if action == "verify":
                self.register.verify(case_id, method=form.get("method"), actor=actor)
            elif action == "approve":
                self.register.approve(case_id, action=str(form.get("approval") or ""), actor=actor,
                                      note=form.get("note") or None)
            elif action == "answer":
                answer_task(self.register, case_id, str(form.get("system") or ""), note=form.get("note"), actor=actor)
            elif action == "extend":
                self.register.extend(case_id, new_due_on=form.get("until"), reason=form.get("reason"),
                                     told_on=form.get("told_on") or None, told_how=form.get("told_how") or None,
                                     actor=actor)
            elif action == "lift":
                record_lift_decision(self.register, case_id, reason=form.get("reason"), actor=actor)
            elif action == "close":
                self.register.close_case(case_id, outcome=form.get("outcome"), actor=actor,
                                         force=form.get("force") == "yes")
            elif action == "launch":
                return self._launch(request, sess, str(form.get("launch") or ""))
            else:
                return PlainTextResponse("no such action", status_code=404)
        except RegisterError as exc:  # CompactionPending is one: the action is recorded, the message says so
            if isinstance(exc, CaseNotFound):
                raise
            return self.case_page(request, sess, form, error=str(exc), status=409)
        log.info("desk: case %s %s by %s", case_id, action, actor)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    def _launch(self, request: Request, sess: accounts.Session, key: str) -> Response:
        case_id = request.path_params["case_id"]
        case = self.register.get(case_id)
        if key not in BY_KIND.get(case.kind, ()):
            return self.case_page(request, sess, None, error=f"{key} does not belong to a {case.kind} case", status=409)
        spec = LAUNCHES[key]
        if case.status != "open":
            return self.case_page(request, sess, None, error="the case is closed", status=409)
        if spec.needs_approval and not self.register.approvals_for(case_id, spec.needs_approval):
            return self.case_page(request, sess, None, error=f"{spec.job} needs an approval first", status=409)
        try:
            run_id = launch(key, case_id, base=self.dagster_url)
        except LaunchError as exc:
            return self.case_page(request, sess, None, error=str(exc), status=502)
        self.register.record_event(case_id, RUN_EVENT, {"job": spec.job, "launch": key, "run_id": run_id,
                                                        **dict(spec.extra)}, actor=sess.username)
        log.info("desk: case %s: %s run %s launched by %s", case_id, spec.job, run_id, sess.username)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    def export(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        case = self.register.get(request.path_params["case_id"])
        name = case.export_file
        path = (self.export_dir / name).resolve() if name else None
        if path is None or path.parent != self.export_dir.resolve() or not path.is_file():
            return self.render(request, "message.html", sess, 404, message="no export package for this case")
        self.register.record_event(case.case_id, "export_downloaded", {"file": name, "sha256": case.export_sha256},
                                   actor=sess.username)
        log.info("desk: case %s export downloaded by %s", case.case_id, sess.username)
        return FileResponse(path, media_type="application/zip", filename=name)

    def digest(self, request: Request, sess: accounts.Session, form: Any) -> Response:
        now, max_age = utcnow(), parse_max_age(os.environ.get("FRESHNESS_MAX_AGE_HOURS", ""))
        stale = [s for s in raw_store_syncs(self.raw_dir) if s.is_stale(now, max_age)]
        notice = deadline_notice(self.register, today=today_helsinki(), stale=stale, now=now)
        return self.render(request, "digest.html", sess, notice=notice)


def desk_port() -> int:
    """``DESK_PORT``, default 3001 (next to the Dagster UI's 3000)."""
    return int(os.environ.get("DESK_PORT") or DEFAULT_PORT)


def _lines(value: Any) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def create_app(register_url: str | None = None, *, export_dir: str | Path | None = None,
               raw_dir: str | Path | None = None, dagster_url: str | None = None) -> Starlette:
    """The desk over the register at ``register_url`` (default ``REGISTER_URL``); exports from
    ``EXPORT_DIR``, raw stores (for the digest's stale systems) from ``RAW_DIR``, runs launched
    at ``DAGSTER_UI_URL``."""
    register = open_register(register_url)
    accounts.ensure_tables(register)
    desk = Desk(register,
                export_dir=Path(export_dir or os.environ.get("EXPORT_DIR") or DEFAULT_EXPORT_DIR),
                raw_dir=Path(raw_dir or os.environ.get("RAW_DIR") or "data/raw"),
                dagster_url=(dagster_url or ui_url()).rstrip("/"))
    officer, anyone = desk.page(officer_only=True), desk.page()
    routes = [
        Route("/login", desk.login_page, methods=["GET", "POST"]),
        Route("/logout", anyone(desk.logout), methods=["POST"]),
        Route("/", anyone(desk.queue)),
        Route("/digest", anyone(desk.digest)),
        Route("/cases/new", officer(desk.new_case), methods=["GET", "POST"]),
        Route("/cases/{case_id}", anyone(desk.case_page)),
        Route("/cases/{case_id}/export", officer(desk.export)),
        Route("/cases/{case_id}/{action}", officer(desk.case_action), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        # Unknown URLs: a visitor without a session learns nothing but the login page.
        sess = await run_in_threadpool(accounts.session, register, request.cookies.get(SESSION_COOKIE))
        if sess is None:
            return RedirectResponse("/login", status_code=303)
        return PlainTextResponse("not found", status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        register.close()

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, lifespan=lifespan)
    app.state.desk = desk
    return SecurityHeaders(app)
