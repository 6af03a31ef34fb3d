"""`make demo`: start the sandbox, run nightly_sync once, then serve the Dagster UI and the
privacy officer's desk (on ``DESK_PORT``, default 3001) with a seeded officer account.

Runs in the foreground; Ctrl-C (or SIGTERM) stops the UI, Request Tracker and the sandbox. The sandbox's settings are written
to ``data/sandbox.env`` (shell-sourceable) so a second terminal can use them too.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE_FILE = Path("data/sandbox/endpoints.json")
ENV_FILE = Path("data/sandbox.env")
RT_CACHE = Path("data/rt-cache")
UI_HOST, UI_PORT = "127.0.0.1", 3000
DESK_PORT = int(os.environ.get("DESK_PORT") or 3001)
OFFICER_FILE = Path("data/desk-officer.txt")  # the seeded officer's credentials, mode 0600


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def start_sandbox() -> subprocess.Popen:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.unlink(missing_ok=True)
    log = open(STATE_FILE.parent / "serve.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--state-file", str(STATE_FILE)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not STATE_FILE.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox exited with {proc.returncode}; see {STATE_FILE.parent / 'serve.log'}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("the sandbox did not start within 120 s")
        time.sleep(0.2)
    return proc


def sandbox_env() -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "env", "--state-file", str(STATE_FILE)],
        check=True, capture_output=True, text=True,
    ).stdout
    ENV_FILE.write_text(out)
    env = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip().strip("'\"")
    return env


def start_request_tracker():
    """A throw-away RT 5 holding the world the running sandbox serves (the seed and sizes in
    its state file), so `python -m sandbox truth` describes the demo's RT too. The database is
    seeded by RT's own code and cached under data/ (``seeded_database``): later demos start at once."""
    from sandbox.request_tracker import RequestTracker, seeded_database
    from sandbox.world import World

    state = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    world = World.generate(seed=state["seed"], **state["sizes"])
    rw = world.derive("request_tracker")
    database, _ = seeded_database(world, users=len(rw.users), tickets=len(rw.tickets), cache_dir=RT_CACHE)
    return RequestTracker.start(database=database)


def seed_officer(env: dict[str, str]) -> str:
    """Create the demo's desk officer once; its name and password go to OFFICER_FILE (0600)
    and are printed that one time. Returns the line to show on later demos too."""
    if OFFICER_FILE.exists():
        return f"the officer's user name and password are in {OFFICER_FILE}"
    password = secrets.token_urlsafe(18)
    for name in ("officer", "officer-2", "officer-3"):  # "officer" exists if the file was deleted
        done = subprocess.run([sys.executable, "-m", "contact_register.cli", "desk", "create-officer", name],
                              input=password + "\n", env=env, capture_output=True, text=True)
        if done.returncode == 0:
            break
    else:
        return f"no desk officer could be created: {done.stderr.strip()}"
    OFFICER_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(OFFICER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"user: {name}\npassword: {password}\n")
    print(f"\nDesk officer created (shown once; kept in {OFFICER_FILE}):\n  user: {name}\n  password: {password}\n",
          flush=True)
    return f"the officer's user name and password are in {OFFICER_FILE}"


def _stop_on_sigterm(_signum, _frame) -> None:
    # A demo started from a script or a service manager is stopped with SIGTERM, not Ctrl-C:
    # take the same way out, so that RT, the sandbox and the UI are stopped too.
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    os.environ.setdefault("DAGSTER_HOME", str(Path("data/dagster").resolve()))
    print("Starting the sandbox (imitated SaaS APIs with synthetic Finnish contacts)...", flush=True)
    sandbox = start_sandbox()
    rt = None
    try:
        env = dict(os.environ, **sandbox_env())
        # Request Tracker is not imitated: a real, throw-away RT 5 (installed by `make rt`).
        print("Starting Request Tracker 5 and loading the sandbox's world into it...", flush=True)
        rt = start_request_tracker()
        env.update(rt.env())
        # The suppression list's key, generated into data/ for the demo (production sets
        # SUPPRESSION_KEY), and the sandbox's newsletter list for the Google marketing ban.
        demo = {"SUPPRESSION_KEY_FILE": str(Path("data/suppression.key").resolve())}
        if env.get("GOOGLE_DOMAIN"):
            demo["GOOGLE_MAILING_LISTS"] = f"uutiskirje@{env['GOOGLE_DOMAIN']}"
        demo = {key: value for key, value in demo.items() if not os.environ.get(key)}
        env.update(demo)
        with ENV_FILE.open("a") as f:
            f.writelines(f"{key}={value}\n" for key, value in {**rt.env(), **demo}.items())
        print(f"Sandbox settings written to {ENV_FILE}", flush=True)
        print("Running nightly_sync once...", flush=True)
        subprocess.run(
            [_bin("dagster"), "job", "execute", "-m", "pipelines.definitions", "-j", "nightly_sync"],
            env=env, check=True,
        )
        warehouse = env.get("WAREHOUSE_PATH", "data/warehouse.duckdb")
        officer = seed_officer(env)
        print(
            "\nnightly_sync finished.\n"
            f"  Dagster UI:  http://{UI_HOST}:{UI_PORT}  (runs, assets, the nightly_sync schedule)\n"
            f"  Desk:        http://{UI_HOST}:{DESK_PORT}  (the privacy officer's desk; {officer})\n"
            f"  Warehouse:   {warehouse}  - open it read-only:\n"
            f"               .venv/bin/python -c \"import duckdb; print(duckdb.connect('{warehouse}', read_only=True)"
            ".sql('SELECT count(*) FROM persons'))\"\n"
            "  Stop with Ctrl-C.\n",
            flush=True,
        )
        env.setdefault("DAGSTER_UI_URL", f"http://{UI_HOST}:{UI_PORT}")  # where the desk launches runs
        desk = subprocess.Popen([sys.executable, "-m", "contact_register.cli", "desk", "serve", "--host", UI_HOST,
                                 "--port", str(DESK_PORT)], env=env)
        ui = subprocess.Popen(
            [_bin("dagster"), "dev", "-m", "pipelines.definitions", "-h", UI_HOST, "-p", str(UI_PORT)], env=env
        )
        try:
            return ui.wait()
        except KeyboardInterrupt:
            ui.terminate()
            ui.wait(timeout=30)
            return 0
        finally:
            desk.terminate()
            desk.wait(timeout=10)
    finally:
        if rt is not None:
            rt.stop()
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()


if __name__ == "__main__":
    sys.exit(main())
