"""``contact-register desk ...``: the privacy officer's desk (a web application).

    create-officer NAME  add an officer (opens, verifies, approves, answers, closes cases)
    create-viewer NAME   add a viewer (reads only)
    serve                serve the desk (default http://127.0.0.1:$DESK_PORT, port 3001)

The password is read from stdin when it is not a terminal (one line), else asked twice;
never from the command line, which shell history and the process list would keep.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import Any

from contact_register.requests.cases import RegisterError, open_register


def register(subparsers: Any) -> argparse.ArgumentParser:
    desk = subparsers.add_parser("desk", help="the privacy officer's desk (web application)", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    desk.add_argument("--register-url", default=None, help="default: $REGISTER_URL, else data/register.sqlite")
    sub = desk.add_subparsers(dest="desk_command", required=True)
    for role in ("officer", "viewer"):
        create = sub.add_parser(f"create-{role}", help=f"add a desk account with the {role} role")
        create.add_argument("name", help="user name; also the actor in the audit trail")
        create.set_defaults(role=role)
    serve = sub.add_parser("serve", help="serve the desk")
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (put a TLS reverse proxy in front)")
    serve.add_argument("--port", type=int, default=None, help="default $DESK_PORT, else 3001")
    desk.set_defaults(func=run)
    return desk


def read_password(stdin=sys.stdin) -> str:
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise RegisterError("the passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    if args.desk_command == "serve":
        return serve(args.host, args.port, args.register_url)
    from contact_register.desk.accounts import create_account

    try:
        with open_register(args.register_url) as reg:
            create_account(reg, args.name, read_password(), role=args.role)
    except RegisterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.role} {args.name} created")
    return 0


def serve(host: str, port: int | None, register_url: str | None = None) -> int:
    import uvicorn

    from contact_register.desk import create_app
    from contact_register.desk.app import desk_port

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Access log lines carry the method, path (case ids only) and status; proxy_headers lets a
    # reverse proxy on this host tell uvicorn the request came over https (Secure cookies).
    uvicorn.run(create_app(register_url), host=host, port=port or desk_port(), proxy_headers=True,
                server_header=False)
    return 0
