"""`contact-register`: the operator command line.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its sub-commands, each with ``func`` set to a handler returning an exit code; a new group (for
example ``request``) is one more module in GROUPS.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import duckdb

GROUPS = ("contact_register.cli.identity", "contact_register.cli.request", "contact_register.cli.doctor",
          "contact_register.cli.desk")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contact-register", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)
    for name in GROUPS:
        importlib.import_module(name).register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"contact-register: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        # DuckDB's messages can quote the offending input line: personal data stays out of it.
        print(f"contact-register: the data could not be processed ({type(exc).__name__})", file=sys.stderr)
        return 2
