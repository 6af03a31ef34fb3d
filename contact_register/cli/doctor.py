"""`contact-register doctor`: prove the configured systems' settings on day one (read-only).

Exit status 0 only when every configured system passes; 1 when a check fails; 2 on a usage
error. The table names each failing setting and how to fix it, and holds no personal data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contact_register.doctor import SYSTEMS, compare_shapes, read_shapes, run_checks, write_shapes


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("doctor", help="check every configured system's URL, credentials, rights and clock")
    parser.add_argument("--system", action="append", choices=SYSTEMS, dest="systems",
                        help="check only this system (repeatable); default: every system")
    parser.add_argument("--shapes", type=Path, metavar="DIR",
                        help="write the structure of each answer (names and types, no values) to DIR")
    parser.add_argument("--compare-shapes", type=Path, metavar="DIR",
                        help="diff the shapes in DIR (written live with --shapes) against the answers here")
    parser.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    live = read_shapes(args.compare_shapes) if args.compare_shapes else None
    report = run_checks(systems=tuple(args.systems or SYSTEMS))
    print(report.table())
    if args.shapes:
        written = write_shapes(report, args.shapes)
        print(f"\n{len(written)} answer shapes written to {args.shapes}")
    status = 0 if report.ok else 1
    if live is not None:
        # Only the systems checked here can be compared.
        checked = {f.system for f in report.findings if f.status != "not configured"}
        live = {k: v for k, v in live.items() if k.split("/", 1)[0] in checked}
        differences = compare_shapes(live, report.shapes)
        print(f"\nshape differences: {len(differences)}")
        for line in differences:
            print(f"  {line}")
        status = status or (1 if differences else 0)
    if not report.ok:
        print("\ndoctor: some checks failed; fix the settings named above and run it again", file=sys.stderr)
    return status
