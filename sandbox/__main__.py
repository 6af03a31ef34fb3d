"""Command line: `python -m sandbox serve | env | truth OUT.csv`.

`serve` writes a state file (JSON with the pid and each system's url and environment settings)
only after every server listens, and atomically, so `env` never reads a half-written file or a
url that does not answer yet.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from contact_register.warehouse.build import process_alive

from .server import SYSTEMS, Sandbox
from .world import World

DEFAULT_STATE = "data/sandbox/endpoints.json"
SIZES = ("persons", "organizations", "deals", "activities", "notes")


def _add_world_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help="world seed (default 7, or $SANDBOX_SEED)")
    for size in SIZES:
        parser.add_argument(f"--{size}", type=int, default=None, help=f"number of {size} (or $SANDBOX_{size.upper()})")


def _world(args: argparse.Namespace) -> World:
    """Flags win over SANDBOX_* environment variables, which win over the defaults."""
    def pick(name: str) -> int | None:
        flag = getattr(args, name)
        if flag is not None:
            return flag
        env = os.environ.get(f"SANDBOX_{name.upper()}")
        return int(env) if env else None

    seed = pick("seed")
    sizes: dict[str, Any] = {k: v for k in SIZES if (v := pick(k)) is not None}
    return World.generate(seed=7 if seed is None else seed, **sizes)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cmd_serve(args: argparse.Namespace) -> int:
    world = _world(args)
    sandbox = Sandbox(world, systems=list(SYSTEMS), host=args.host)
    world.drop_cache()  # the imitations hold their own stores now
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    state_file = Path(args.state_file)
    sandbox.start()
    try:
        state = {"pid": os.getpid(), "seed": world.seed, "sizes": world.sizes, "systems": sandbox.describe()}
        _write_atomically(state_file, json.dumps(state, indent=2) + "\n")
        for name in sandbox.systems:
            print(sandbox.url(name), flush=True)
        while not stop.wait(0.5):  # a short timeout keeps the main thread responsive to signals
            pass
    finally:
        sandbox.stop()
        try:
            if json.loads(state_file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                state_file.unlink()
        except (OSError, ValueError):
            pass
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file)
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"sandbox is not running: no state file at {state_file} (start it with `python -m sandbox serve`)",
              file=sys.stderr)
        return 1
    except ValueError:
        print(f"sandbox state file {state_file} is not valid JSON", file=sys.stderr)
        return 1
    pid = state.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        print(f"sandbox is not running: process {pid} from {state_file} is gone "
              "(start it with `python -m sandbox serve`)", file=sys.stderr)
        return 1
    for system in state.get("systems", {}).values():
        for key, value in system.get("env", {}).items():
            print(f"{key}={shlex.quote(str(value))}")
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    world = _world(args)
    out = Path(args.out)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("system", "record_id", "true_person_id"))
        for system in world.systems():
            writer.writerows(world.truth(system))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve every imitated system until SIGTERM/SIGINT")
    _add_world_flags(serve)
    serve.add_argument("--state-file", default=DEFAULT_STATE)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)
    env = sub.add_parser("env", help="print the environment settings of the running sandbox")
    env.add_argument("--state-file", default=DEFAULT_STATE)
    env.set_defaults(func=cmd_env)
    truth = sub.add_parser("truth", help="write the world's ground truth as CSV")
    truth.add_argument("out", metavar="OUT.csv")
    _add_world_flags(truth)
    truth.set_defaults(func=cmd_truth)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
