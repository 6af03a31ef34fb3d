"""A real, throw-away Request Tracker 5 for tests, the demo and the benchmark.

RT is not imitated: this module installs Debian's ``request-tracker5`` (once per machine),
creates an SQLite-backed RT in a temporary folder, runs ``rt-server`` on a free local port as
an unprivileged user, waits until REST2 answers and seeds it from the synthetic world.

    python -m sandbox.request_tracker install          # apt-get, a fast no-op when installed
    python -m sandbox.request_tracker serve [--users N --tickets N]   # start + seed, print env, wait
    python -m sandbox.request_tracker env              # the env of an RT started by `serve`
    python -m sandbox.request_tracker stop             # stop it

``serve``, ``env`` and ``stop`` take ``--state-file`` (default ``data/sandbox/request-tracker.json``,
like ``python -m sandbox``): two RTs served with different state files never mix up.

From Python (pytest fixtures, the demo, the bench)::

    with RequestTracker.start() as rt:        # or RequestTracker.from_env() for an existing RT
        seed(rt, world)
        rt.env()  # {"RT_URL": ..., "RT_USER": ..., "RT_PASSWORD": ..., "RT_SITE_CONFIG": ...}

An existing RT is used instead when ``RT_URL`` and ``RT_TOKEN`` (or ``RT_USER``/``RT_PASSWORD``)
are set: ``RequestTracker.from_env()``. Seeding such an RT is refused unless it is asked for.

Seeding: users are created through REST2 (``POST /user``); customers' messages enter through
RT's mail gateway (``/REST/1.0/NoAuth/mail-gateway``, what ``rt-mailgate`` posts) as raw MIME,
so that RT itself parses From/Cc headers, charsets, quoted replies, attachments and broken
MIME, and records the customer as the author; staff replies go through REST2
(``POST /ticket/N/correspond``). Mail that RT would send out is piped to /dev/null.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

PACKAGES = ("request-tracker5", "rt5-db-sqlite", "dma", "dbconfig-no-thanks", "curl")
RT_SERVER = "/usr/share/request-tracker5/libexec/rt-server"
SETUP_DATABASE = "/usr/sbin/rt-setup-database-5"
SHREDDER = "/usr/sbin/rt-shredder-5"
MUNGE = "/usr/sbin/rt-munge-attachments-5"
RUN_AS = "nobody"  # rt-server refuses nothing as root, but a web server must not run as root
ROOT_PASSWORD = "password"  # RT's default for root on a fresh database
DEFAULT_STATE = "data/sandbox/request-tracker.json"

SITE_CONFIG = """\
Set($rtname, 'rt.sandbox');
# TicketSQL dates are read in this zone: the connector's cursors are UTC.
Set($Timezone, 'UTC');
Set($Organization, 'sandbox.invalid');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{db}');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebPath, '');
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($CorrespondAddress, 'support@ohjelmistotalo.fi');
Set($CommentAddress, 'support-comment@ohjelmistotalo.fi');
Set($LogToSyslog, undef);
Set($LogToFile, undef);
Set($LogToSTDERR, 'error');
Set($MasonDataDir, '{dir}/mason');
Set($MasonSessionDir, '{dir}/sessions');
Set($ShredderStoragePath, '{dir}/shredder');
# Mail RT would send (notifications to requestors) goes nowhere.
Set($MailCommand, 'sendmailpipe');
Set($SendmailPath, '{dir}/discard-mail');
# A sandbox only: cheap password hashing keeps basic-auth requests fast.
Set($BcryptCost, 4);
# Cc lines of a customer's first mail become ticket Ccs, as many sites configure.
Set($ParseNewMessageForTicketCcs, 1);
Set($RTAddressRegexp, '^support(-comment)?\\@ohjelmistotalo\\.fi$');
Set($DisableGraphViz, 1);
Set($DisableGD, 1);
1;
"""

# Customers write in by mail: like most RT sites, Everyone may open and answer tickets.
INITIAL_DATA = """@ACL = (
    map({ { GroupDomain => 'SystemInternal', GroupType => 'Everyone', Right => $_ } }
        qw(CreateTicket ReplyToTicket SeeQueue)),
);
1;
"""


# -- installation -----------------------------------------------------------------------------


def is_installed() -> bool:
    if not (os.path.exists(RT_SERVER) and os.path.exists(SETUP_DATABASE) and os.path.exists(SHREDDER)):
        return False
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "rt5-db-sqlite"], capture_output=True, text=True
    ).stdout
    return "install ok installed" in status


def install(*, quiet: bool = False) -> float:
    """Install RT 5 from Debian's packages unless present. Returns seconds spent."""
    started = time.monotonic()
    if is_installed():
        return time.monotonic() - started
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        raise SystemExit("Request Tracker is not installed and this user cannot run apt-get (no root, no sudo).")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    out = subprocess.DEVNULL if quiet else None
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env, stdout=out)
    subprocess.run(
        sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        check=True, env=env, stdout=out,
    )
    if not is_installed():
        raise SystemExit("apt-get finished but Request Tracker 5 is still not installed.")
    return time.monotonic() - started


# -- one RT -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RequestTracker:
    """A running RT: either one this process started (``start``) or an existing one (``from_env``)."""

    url: str
    user: str = "root"
    password: str = ROOT_PASSWORD
    token: str = ""
    folder: Path | None = None  # set when we own the RT
    process: subprocess.Popen | None = None
    started_s: float = 0.0
    owned: bool = False
    extra: dict = field(default_factory=dict)

    # -- lifecycle

    @classmethod
    def start(cls, *, port: int | None = None, timeout_s: float = 120.0, install_if_missing: bool = True,
              database: Path | None = None) -> "RequestTracker":
        """``database``: an RT SQLite database to run on (a copy of it; see ``seeded_database``)
        instead of a fresh one."""
        began = time.monotonic()
        if install_if_missing:
            install(quiet=True)
        elif not is_installed():
            raise RuntimeError("Request Tracker 5 is not installed: run `python -m sandbox.request_tracker install`")
        port = port or free_port()
        folder = _new_site(port)
        if database is not None:
            shutil.copyfile(database, folder / "rt.db")
        run_as = _own(folder)
        env = _rt_env(folder)
        if database is None:
            _init_database(folder)
        log = open(folder / "rt-server.log", "ab")
        # --pdeathsig: if this process dies without stop() (killed test run), RT stops too.
        process = subprocess.Popen(
            _as_user(run_as, pdeathsig=True) + [RT_SERVER, "--host", "127.0.0.1", "--port", str(port), "--max-workers", "2"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        rt = cls(f"http://127.0.0.1:{port}", folder=folder, process=process, owned=True)
        try:
            rt.wait_ready(timeout_s)
        except BaseException:
            rt.stop()
            raise
        rt.started_s = time.monotonic() - began
        return rt

    @classmethod
    def from_env(cls, env: dict | None = None) -> "RequestTracker | None":
        env = os.environ if env is None else env
        url = env.get("RT_URL")
        if not url:
            return None
        folder = env.get("RT_SANDBOX_DIR")
        return cls(
            url.rstrip("/"), user=env.get("RT_USER", ""), password=env.get("RT_PASSWORD", ""),
            token=env.get("RT_TOKEN", ""), folder=Path(folder) if folder else None,
        )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"rt-server exited with {self.process.returncode}: see {self.folder}/rt-server.log")
            try:
                r = requests.get(f"{self.url}/REST/2.0/rt", auth=self.auth(), headers=self.headers(), timeout=5)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.3)
        raise TimeoutError(f"RT REST2 did not answer within {timeout_s:.0f}s ({last})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        if self.owned and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "RequestTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- access

    @property
    def database(self) -> Path | None:
        return self.folder / "rt.db" if self.folder else None

    @property
    def site_config(self) -> Path | None:
        return self.folder / "RT_SiteConfig.pm" if self.folder else None

    def auth(self):
        return None if self.token else (self.user, self.password)

    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def create_token(self, owner: str = "root") -> str:
        """An RT auth token for ``owner`` (what an admin creates under Preferences > Auth Tokens),
        made with RT's own API on this RT's database."""
        if self.folder is None:
            raise RuntimeError("tokens can be made here only for an RT started here")
        script = (
            "use RT; RT::LoadConfig(); RT::Init(); my $u = RT::User->new(RT->SystemUser); $u->Load($ARGV[0]);"
            " my ($ok, $msg, $auth) = RT::AuthToken->new(RT->SystemUser)->Create(Owner => $u->id,"
            " Description => 'contact-register'); die \"no token\\n\" unless $ok; print $auth;"
        )
        out = subprocess.run(
            _as_user(_run_as()) + ["perl", "-I/usr/share/request-tracker5/lib", "-e", script, owner],
            env=_rt_env(self.folder), cwd=self.folder, check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def admin_tools(self):
        """RT's admin tools for this RT, run as the same unprivileged user as rt-server (so the
        files SQLite writes stay the server's)."""
        from connectors.request_tracker import RtAdminTools

        if self.folder is None:
            raise RuntimeError("admin tools need an RT started here (or configure RtAdminTools for the RT host)")
        return RtAdminTools(command_prefix=_as_user(_run_as()), env=_rt_env(self.folder))

    def env(self) -> dict[str, str]:
        """Environment settings that point the connector (and its admin tools) at this RT."""
        # All three credential settings, the unused ones empty (the Dagster resource reads each).
        env = {"RT_URL": self.url, "RT_TOKEN": self.token, "RT_USER": "", "RT_PASSWORD": ""}
        if not self.token:
            env["RT_USER"], env["RT_PASSWORD"] = self.user, self.password
        if self.folder is not None:
            # rt-shredder and rt-munge-attachments run on the RT host with its site config.
            env["RT_SITE_CONFIG"] = str(self.site_config)
            env["RT_SITE_CONFIG_DIR"] = str(self.folder / "RT_SiteConfig.d")
            env["RT_SANDBOX_DIR"] = str(self.folder)
        return env


def _new_site(port: int) -> Path:
    """A temporary folder with an RT site configuration for ``port`` and no database yet."""
    folder = Path(tempfile.mkdtemp(prefix="rt-sandbox-"))
    for sub in ("mason", "sessions", "shredder", "home"):
        (folder / sub).mkdir()
    (folder / "RT_SiteConfig.pm").write_text(SITE_CONFIG.format(db=folder / "rt.db", port=port, dir=folder))
    (folder / "RT_SiteConfig.d").mkdir()  # empty: keeps Debian's /rt WebPath out
    (folder / "initialdata").write_text(INITIAL_DATA)
    discard = folder / "discard-mail"
    discard.write_text("#!/bin/sh\ncat >/dev/null\n")
    discard.chmod(0o755)
    return folder


def _own(folder: Path) -> pwd.struct_passwd | None:
    """Hand the folder to the unprivileged account RT runs as (when we are root)."""
    run_as = _run_as()
    if run_as is not None:
        os.chmod(folder, 0o755)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    return run_as


def _init_database(folder: Path) -> None:
    """RT's schema and initial data (root/password, the General queue) plus ours."""
    run_as, env = _run_as(), _rt_env(folder)
    subprocess.run(
        _as_user(run_as) + [SETUP_DATABASE, "--action", "init"],
        check=True, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    subprocess.run(
        _as_user(run_as) + [SETUP_DATABASE, "--action", "insert", "--datafile", str(folder / "initialdata")],
        check=True, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account rt-server runs as: ``nobody`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(RUN_AS)


def _as_user(run_as: pwd.struct_passwd | None, *, pdeathsig: bool = False) -> list[str]:
    death = ["--pdeathsig", "SIGTERM"] if pdeathsig else []
    if run_as is None:
        return ["setpriv", *death, "--"] if death else []
    return ["setpriv", f"--reuid={run_as.pw_uid}", f"--regid={run_as.pw_gid}", "--clear-groups", *death, "--"]


def _rt_env(folder: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(folder / "home"),
        "LANG": "C.UTF-8",
        "RT_SITE_CONFIG": str(folder / "RT_SiteConfig.pm"),
        "RT_SITE_CONFIG_DIR": str(folder / "RT_SiteConfig.d"),
    }


# -- seeding ----------------------------------------------------------------------------------


@dataclass
class SeedResult:
    users: int = 0
    tickets: int = 0
    messages: int = 0
    requests: int = 0
    wall_s: float = 0.0
    ticket_ids: dict[int, int] = field(default_factory=dict)  # world ticket key -> RT id


def seed(rt: RequestTracker, world, *, users: int | None = None, tickets: int | None = None,
         allow_foreign: bool = False, rt_world=None, workers: int = 2) -> SeedResult:
    """Seed ``rt`` with the world's RT derivation (or with ``rt_world``). Tickets are seeded
    by ``workers`` threads (rt-server runs two workers; RT's message handling is CPU-bound)."""
    from sandbox.request_tracker_world import derive

    if not rt.owned and not allow_foreign:
        raise RuntimeError("refusing to seed an RT this process did not start (pass allow_foreign=True)")
    rw = rt_world or (derive(world, users=users, tickets=tickets) if (users or tickets) else world.derive("request_tracker"))
    began = time.monotonic()
    s = requests.Session()
    s.auth = rt.auth()
    s.headers.update(rt.headers())
    res = SeedResult()
    api = f"{rt.url}/REST/2.0"
    count_lock = threading.Lock()

    def call(method: str, path: str, **kw) -> requests.Response:
        res.requests += 1
        r = s.request(method, api + path, timeout=60, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"seeding RT: {method} {path.split('?')[0]} -> HTTP {r.status_code}")
        return r

    for body in _user_bodies(rw):
        call("POST", "/user", json=dict(body, Privileged=0))
        res.users += 1
    create_lock = threading.Lock()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.auth = rt.auth()
            local.s.headers.update(rt.headers())
        return local.s

    def post(path: str, **kw) -> requests.Response:
        with count_lock:
            res.requests += 1
        r = session().post(rt.url + path, timeout=120, **kw)
        if path.startswith("/REST/2.0") and r.status_code >= 400:
            raise RuntimeError(f"seeding RT: POST {path.split('?')[0]} -> HTTP {r.status_code}")
        return r

    def one_ticket(t) -> None:
        ticket_id = None
        for kind, content in _ticket_messages(rw, t):
            if kind == "staff":
                post(f"/REST/2.0/ticket/{ticket_id}/correspond", json={"Content": content, "ContentType": "text/plain"})
            else:
                raw = content if ticket_id is None else content.replace(TICKET_ID_PLACEHOLDER, str(ticket_id).encode())
                form = {"queue": "General", "action": "correspond", "message": raw}
                if ticket_id is None:
                    # The gateway answers only "ok": creation and "find the newest ticket" run
                    # under one lock, so the newest ticket is this one. Replies run in parallel.
                    with create_lock:
                        _gateway_ok(post("/REST/1.0/NoAuth/mail-gateway", data=form))
                        found = session().get(f"{rt.url}/REST/2.0/tickets",
                                              params={"query": "id>0", "orderby": "id", "order": "DESC",
                                                      "per_page": 1, "fields": "id"}, timeout=60)
                        with count_lock:
                            res.requests += 1
                        ticket_id = int(found.json()["items"][0]["id"])
                else:
                    _gateway_ok(post("/REST/1.0/NoAuth/mail-gateway", data=form))
            with count_lock:
                res.messages += 1
        with count_lock:
            res.ticket_ids[t.key] = ticket_id
            res.tickets += 1

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in [pool.submit(one_ticket, t) for t in rw.tickets]:
            future.result()
    res.wall_s = time.monotonic() - began
    return res


BULK_SEEDER = Path(__file__).with_name("rt_bulk_seed.pl")


def seeded_database(world, *, users: int, tickets: int, cache_dir: Path) -> tuple[Path, dict]:
    """An RT SQLite database holding the world's RT derivation at this size, seeded by RT's own
    code in one process (``rt_bulk_seed.pl``: RT::User->Create, the mail gateway's
    RT::Interface::Email::Gateway, RT::Ticket->Correspond) before any rt-server runs: several
    times faster than the HTTP ``seed``. For the benchmark; tests keep ``seed``.

    The database is cached in ``cache_dir`` under the world seed and size, the sizes and a digest
    of what makes it (the seeding input itself, the seeder script and RT's package version), so
    it is rebuilt only when its content would change. Returns (path, summary): users, tickets,
    messages and seed_s (the seeding time when it was built)."""
    from sandbox.request_tracker_world import derive

    rw = derive(world, users=users, tickets=tickets)
    stem = f"rt-world{world.seed}x{len(world.humans)}-{users}u-{tickets}t"
    cache_dir.mkdir(parents=True, exist_ok=True)
    plan_file = cache_dir / f"{stem}.plan.partial"
    digest = hashlib.sha256(BULK_SEEDER.read_bytes() + _rt_version().encode())
    with open(plan_file, "wb") as plan:
        for line in _bulk_plan(rw):
            digest.update(line)
            plan.write(line)
    cached = cache_dir / f"{stem}-{digest.hexdigest()[:12]}.db"
    summary_file = cached.with_suffix(".json")
    if cached.exists() and summary_file.exists():
        plan_file.unlink()
        return cached, json.loads(summary_file.read_text())
    began = time.monotonic()
    folder = _new_site(free_port())
    try:
        _own(folder)
        _init_database(folder)
        # The seeder's progress and errors (counts and RT's messages, no personal data) go to our stderr.
        with open(plan_file, "rb") as plan:
            proc = subprocess.run(
                _as_user(_run_as(), pdeathsig=True) + ["perl", str(BULK_SEEDER), TICKET_ID_PLACEHOLDER.decode()],
                env=_rt_env(folder), cwd=folder, stdin=plan, stdout=subprocess.PIPE,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"bulk seeding RT failed with exit status {proc.returncode} (its messages are above)")
        summary = dict(json.loads(proc.stdout.decode().strip().splitlines()[-1]),
                       seed_s=round(time.monotonic() - began, 1))
        for stale in cache_dir.glob(f"{stem}-*"):  # the same size made by older seeding code
            stale.unlink()
        partial = cached.with_suffix(".partial")
        shutil.copyfile(folder / "rt.db", partial)
        os.replace(partial, cached)
        summary_file.write_text(json.dumps(summary))
        return cached, summary
    finally:
        plan_file.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


def _bulk_plan(rw):
    """The seeder's input, one JSON line per user and per ticket (see rt_bulk_seed.pl)."""
    for body in _user_bodies(rw):
        yield json.dumps({"user": body}).encode() + b"\n"
    for t in rw.tickets:
        messages = [{"staff": c} if kind == "staff" else {"mail": base64.b64encode(c).decode()}
                    for kind, c in _ticket_messages(rw, t)]
        yield json.dumps({"ticket": t.key, "messages": messages}).encode() + b"\n"


def _rt_version() -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "request-tracker5"],
                          capture_output=True, text=True).stdout


# Where a customer's follow-up mail carries the ticket id (its subject tag): the id exists only
# once RT has created the ticket from the first mail.
TICKET_ID_PLACEHOLDER = b"__RT_TICKET_ID__"


def _user_bodies(rw):
    """The users an admin creates up front (REST2 ``POST /user``); users without a name are
    left for RT to learn from their mail, as it does in production."""
    for u in rw.users:
        if u.real_name is None:
            continue
        body = {"Name": u.email, "EmailAddress": u.email, "RealName": u.real_name}
        if u.organization:
            body["Organization"] = u.organization
        if u.phone:
            body["MobilePhone"] = u.phone
        yield body


def _ticket_messages(rw, t):
    """A ticket's messages in order, as RT receives them: ("mail", raw MIME bytes of a
    customer's mail, follow-ups tagged with TICKET_ID_PLACEHOLDER) or ("staff", reply text)."""
    previous: tuple[str, str] | None = None
    for i, m in enumerate(t.messages):
        if m.author < 0:
            staff_name, _ = rw.staff[t.key % len(rw.staff)]
            text = _with_quote(m.body + f"\n\nTerveisin\n{staff_name}\nOhjelmistotalo tuki", previous if m.quote else None)
            yield "staff", text
            previous = (staff_name, text)
        else:
            author = rw.users[m.author]
            sender = author.real_name or author.email.split("@")[0]
            text = _with_quote(f"Hei,\n\n{m.body}\n\nTerveisin\n{sender}", previous if m.quote else None)
            ccs = [rw.users[k] for k in t.ccs] if i == 0 else []
            yield "mail", _mime(author, ccs, t.subject, TICKET_ID_PLACEHOLDER.decode() if i else None, text, m,
                                thread=t.key)
            previous = (sender, text)


def _with_quote(text: str, previous: tuple[str, str] | None) -> str:
    if previous is None:
        return text
    name, quoted = previous
    return text + f"\n\n{name} kirjoitti:\n" + "\n".join("> " + line for line in quoted.splitlines())


def _gateway_ok(r: requests.Response) -> None:
    # The gateway answers 200 with "ok" or "not ok - <reason>" (details only in RT's log).
    first = r.text.splitlines()[0].strip() if r.text else ""
    if r.status_code != 200 or first != "ok":
        raise RuntimeError(f"RT mail gateway refused a message: HTTP {r.status_code} {first[:60]!r}")


def _payload(att, rng_seed: int) -> bytes:
    if att.kind == "text":
        line = "2026-10-01 12:00:00 ERROR Tallennus epäonnistui (koodi 42)\n".encode()
        return (line * (att.size // len(line) + 1))[: att.size]
    return bytes((rng_seed * 31 + i * 7) % 256 for i in range(att.size))


def _mime(author, ccs, subject: str, ticket_id: int | str | None, text: str, m, thread: int | None = None) -> bytes:
    """A customer's mail as raw bytes, with the message's quirks (``thread``: the world's ticket
    key, keeps Message-IDs apart when the id in the subject is still a placeholder)."""
    who = f'"{author.real_name}" <{author.email}>' if author.real_name else author.email
    tag = f"[rt.sandbox #{ticket_id}] " if ticket_id else ""
    head = [f"From: {who}", "To: support@ohjelmistotalo.fi", f"Subject: {tag}{subject if not ticket_id else 'Re: ' + subject}"]
    if ccs:
        head.append("Cc: " + ", ".join(f'"{c.real_name}" <{c.email}>' if c.real_name else c.email for c in ccs))
    # A stable id (not Python's per-process hash()): the same world makes the same mail.
    mid = hashlib.sha256(repr((author.email, text, ticket_id, thread)).encode()).hexdigest()[:20]
    head.append(f"Message-ID: <{mid}@{author.email.split('@')[1]}>")
    head.append("MIME-Version: 1.0")
    if m.charset == "utf-8":
        body, ctype = text.encode("utf-8"), 'text/plain; charset="utf-8"'
    elif m.charset == "iso-8859-1":
        body, ctype = text.encode("latin-1", "replace"), 'text/plain; charset="iso-8859-1"'
    else:  # 8-bit Latin-1 bytes and no charset at all: RT has to guess
        body, ctype = text.encode("latin-1", "replace"), "text/plain"
    if not m.attachments and not m.broken_mime:
        return ("\r\n".join(head + [f"Content-Type: {ctype}", "Content-Transfer-Encoding: 8bit", "", ""])).encode("utf-8", "surrogateescape") + body
    boundary = "==sandbox-boundary-42"
    parts = [b"--" + boundary.encode(), f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode() + body]
    for i, att in enumerate(m.attachments):
        data = _payload(att, i + len(text))
        if att.kind == "bad-base64":
            encoded = b"!!not base64 at all %%%\r\n" + base64.encodebytes(data)[:-7]
        elif att.kind == "text":
            encoded = base64.encodebytes(data)
        else:
            encoded = base64.encodebytes(data)
        parts.append(b"--" + boundary.encode())
        parts.append(
            f'Content-Type: {att.content_type}; name="{att.filename}"\r\n'
            f'Content-Disposition: attachment; filename="{att.filename}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n".encode() + encoded
        )
    if not m.broken_mime:
        parts.append(b"--" + boundary.encode() + b"--")
    # Raw 8-bit headers (lone surrogates become the bytes they escape), as broken clients send.
    header = "\r\n".join(head + [f'Content-Type: multipart/mixed; boundary="{boundary}"', "", ""]).encode(
        "utf-8", "surrogateescape")
    return header + b"\r\n".join(parts) + b"\r\n"


# -- command line -----------------------------------------------------------------------------


def _read_state(state_file: Path) -> dict | None:
    """The state a running `serve` wrote, or None (with the reason on stderr)."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"no RT started by `serve`: no state file at {state_file}", file=sys.stderr)
        return None
    except ValueError:
        print(f"RT state file {state_file} is not valid JSON", file=sys.stderr)
        return None
    pid = state.get("pid") if isinstance(state, dict) else None
    try:
        if not isinstance(pid, int):
            raise ProcessLookupError
        os.kill(pid, 0)
    except ProcessLookupError:
        print(f"the RT of {state_file} is not running (process {pid} is gone)", file=sys.stderr)
        return None
    except PermissionError:
        pass  # alive, another user's
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.request_tracker", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install RT 5 from Debian's packages unless present")
    serve = sub.add_parser("serve", help="start a throw-away RT, seed it, print its env, wait for Ctrl-C")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--persons", type=int, default=300)
    serve.add_argument("--users", type=int, default=None)
    serve.add_argument("--tickets", type=int, default=None)
    env = sub.add_parser("env", help="print the env of the RT started by `serve`")
    stop = sub.add_parser("stop", help="stop the RT started by `serve`")
    for command in (serve, env, stop):
        command.add_argument("--state-file", type=Path, default=Path(DEFAULT_STATE),
                             help=f"where `serve` records its RT (default {DEFAULT_STATE})")
    args = parser.parse_args(argv)
    if args.command == "install":
        spent = install()
        print(f"Request Tracker 5 installed ({spent:.1f}s)", file=sys.stderr)
        return 0
    if args.command == "env":
        state = _read_state(args.state_file)
        if state is None:
            return 1
        for key, value in state["env"].items():
            print(f"{key}={value}")
        return 0
    if args.command == "stop":
        state = _read_state(args.state_file)
        if state is not None:
            os.kill(state["pid"], signal.SIGTERM)  # `serve` stops its RT and removes the state file
        return 0
    from sandbox.world import World

    world = World.generate(seed=args.seed, persons=args.persons, organizations=max(1, args.persons // 5))
    state_file: Path = args.state_file
    with RequestTracker.start() as rt:
        result = seed(rt, world, users=args.users, tickets=args.tickets)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"pid": os.getpid(), "env": rt.env()}), encoding="utf-8")
        os.replace(partial, state_file)  # `env` never reads a half-written file
        print(f"RT up in {rt.started_s:.1f}s, seeded {result.users} users, {result.tickets} tickets, "
              f"{result.messages} messages in {result.wall_s:.1f}s", file=sys.stderr)
        for key, value in rt.env().items():
            print(f"{key}={value}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while rt.process and rt.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            try:  # only our own: another `serve` may have taken this state file over since
                if json.loads(state_file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
