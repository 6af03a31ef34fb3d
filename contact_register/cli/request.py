"""``contact-register request ...``: the privacy officer's command line for the request register.

    new      open a case (kind, identifiers given, received date)
    list     open cases; --due shows only overdue and due-soon ones
    show     one case: identifiers, deadlines, per-system states, approvals, audit trail
    verify   record how the requester's identity was verified
    extend   extend the deadline: within the first month after receipt only, with a reason, after
             telling the requester (--told-on, --told-how); at most three months from receipt
    approve  record an approval (e.g. of an erasure)
    correct  record a rectification case's corrected values (personal data: kept like identifiers)
    answer   record the answer to a system's manual task (state manual_answered)
    lift-restriction  record the decision to lift a restriction (the restriction job then lifts it)
    close    close a case (its identifiers are deleted; hashes and the audit trail stay)
    compact  compact the register again (after `close` exited 4: deleted identifiers leave its files)

Identifiers can be given as options or, to keep them out of shell history, as JSON on stdin
(``--stdin``: ``{"emails": [...], "phones": [...], "name": "...", "organization": "..."}``).
Exit codes: 0 done, 2 refused (bad input or a state that does not allow it), 3 no such case,
4 done but the register not compacted yet (another process held it: run ``compact``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from connectors.clock import today_helsinki
from contact_register import settings
from contact_register.requests.cases import (
    CASE_KINDS,
    CaseNotFound,
    InvalidIdentifier,
    RegisterError,
    open_register,
)
from contact_register.requests.officer import answer_task, open_case
from contact_register.requests.rectification.corrections import (
    load_corrections,
    parse_pairs,
    save_corrections,
    validate_corrections,
)
from contact_register.requests.cases.casebook import Case, CompactionPending
from contact_register.requests.restriction.store import record_lift_decision


def _default_actor() -> str:
    try:
        return settings.register_actor() or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``request`` group to a ``contact-register`` parser's subparsers."""
    request = subparsers.add_parser("request", help="data-subject request cases (the request register)",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    request.add_argument("--register-url", default=None, help="default: $REGISTER_URL, else data/register.sqlite")
    request.add_argument("--actor", default=None, help="who acts (default: $REGISTER_ACTOR or the login name)")
    sub = request.add_subparsers(dest="request_command", required=True)

    new = sub.add_parser("new", help="open a case")
    new.add_argument("--kind", required=True, choices=CASE_KINDS)
    new.add_argument("--email", action="append", default=[])
    new.add_argument("--phone", action="append", default=[])
    new.add_argument("--name")
    new.add_argument("--organization")
    new.add_argument("--stdin", action="store_true", help="read the identifiers as JSON from stdin")
    new.add_argument("--received", help="date the request arrived (YYYY-MM-DD, default today in Helsinki)")
    new.add_argument("--note")
    new.add_argument("--correct", action="append", default=[], metavar="FIELD=VALUE",
                     help="rectification: a corrected name, email, phone or title (or \"corrections\" in --stdin)")
    new.add_argument("--json", action="store_true")

    lst = sub.add_parser("list", help="list cases")
    lst.add_argument("--all", action="store_true", help="closed cases too")
    lst.add_argument("--kind", choices=CASE_KINDS)
    lst.add_argument("--due", action="store_true", help="only overdue and due-soon open cases")
    lst.add_argument("--soon-days", type=int, default=7)
    lst.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="show one case")
    show.add_argument("case_id")
    show.add_argument("--json", action="store_true")

    verify = sub.add_parser("verify", help="record the identity verification")
    verify.add_argument("case_id")
    verify.add_argument("--method", required=True, help="how the identity was verified")

    extend = sub.add_parser("extend", help="extend the deadline")
    extend.add_argument("case_id")
    extend.add_argument("--until", required=True, help="new due date YYYY-MM-DD")
    extend.add_argument("--reason", required=True)
    # Checked by the register (not argparse), so a late extension is refused as late first.
    extend.add_argument("--told-on", help="date the requester was told of the extension and why (YYYY-MM-DD)")
    extend.add_argument("--told-how", help="how they were told, e.g. email (no personal data)")

    approve = sub.add_parser("approve", help="record an approval")
    approve.add_argument("case_id")
    approve.add_argument("--action", required=True, help="what is approved, e.g. erasure or export")
    approve.add_argument("--note")

    correct = sub.add_parser("correct", help="record a rectification case's corrected values")
    correct.add_argument("case_id")
    correct.add_argument("--correct", action="append", default=[], metavar="FIELD=VALUE")
    correct.add_argument("--stdin", action="store_true", help='read {"name": ..., "email": ...} as JSON from stdin')

    answer = sub.add_parser("answer", help="record the answer to a system's manual task")
    answer.add_argument("case_id")
    answer.add_argument("system")
    answer.add_argument("--note", required=True, help="what was done (no personal data)")

    lift = sub.add_parser("lift-restriction", help="record the decision to lift a restriction (then run the "
                                                   "restriction job with lift: true)")
    lift.add_argument("case_id")
    lift.add_argument("--reason", required=True, help="why, and that the person was told (art. 18(3))")

    close = sub.add_parser("close", help="close a case")
    close.add_argument("case_id")
    close.add_argument("--outcome", required=True)
    close.add_argument("--force", action="store_true", help="close although systems are still open")

    sub.add_parser("compact", help="compact the register (after close exited 4)")
    request.set_defaults(func=run)
    return request


register = add_parser  # the name contact_register/cli/__init__.py calls for every command group


def _case_json(case: Case, *, full: bool) -> dict:
    out = case.summary()
    out.update(original_due_on=case.original_due_on, extension_reason=case.extension_reason,
               extension_told_on=case.extension_told_on, extension_told_how=case.extension_told_how,
               verified_method=case.verified_method, verified_by=case.verified_by, verified_at=case.verified_at,
               created_by=case.created_by, closed_at=case.closed_at, outcome=case.outcome,
               export_file=case.export_file, export_sha256=case.export_sha256,
               export_expires_at=case.export_expires_at)
    if full:
        out["identifiers"] = [{"kind": k, "value": v} for k, v, _ in case.identifiers]
        out["systems"] = {s: vars(st) for s, st in case.systems.items()}
        out["approvals"] = [{"action": a, "by": b, "at": t, "note": n} for a, b, t, n in case.approvals]
        out["audit"] = case.audit
    return out


def _print_case(case: Case) -> None:
    print(f"case {case.case_id}  {case.kind}  {case.status}")
    print(f"  received {case.received_on}  due {case.due_on}"
          + (f" (extended from {case.original_due_on}: {case.extension_reason}; requester told on "
             f"{case.extension_told_on} by {case.extension_told_how})" if case.due_on != case.original_due_on else ""))
    if case.possibly_chargeable:
        print("  FLAG: another access request within 12 months (possibly chargeable)")
    print(f"  verified: {case.verified_method} by {case.verified_by} at {case.verified_at}" if case.verified
          else "  verified: not yet")
    for kind, value, _ in case.identifiers:
        print(f"  {kind}: {value}")
    for system, st in case.systems.items():
        extra = ", ".join(x for x in (
            f"{st.records} records" if st.records is not None else "", st.detail or "",
            f"error: {st.error}" if st.error else "", f"until {st.held_until}" if st.held_until else "") if x)
        print(f"  system {system}: {st.state}" + (f" ({extra})" if extra else ""))
    for action, by, at, note in case.approvals:
        print(f"  approved {action} by {by} at {at}" + (f": {note}" if note else ""))
    if case.export_file:
        print(f"  export {case.export_file} sha256 {case.export_sha256} expires {case.export_expires_at}")
    if case.closed_at:
        print(f"  closed {case.closed_at}: {case.outcome}")
    for row in case.audit:
        print(f"  [{row['seq']}] {row['at']} {row['actor']} {row['action']} {json.dumps(row['detail'], ensure_ascii=False)}")


def _stdin_json() -> dict:
    try:
        data = json.loads(sys.stdin.read())
    except (ValueError, UnicodeDecodeError):
        raise InvalidIdentifier("stdin: not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidIdentifier("stdin: expected a JSON object")
    return data


def _stdin_corrections(value: Any) -> dict[str, str]:
    """``{"email": ..., "phone": ...}`` from stdin JSON (absent: no corrections)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidIdentifier("corrections: expected a JSON object of field: value")
    return validate_corrections(value)


def run(args: argparse.Namespace) -> int:
    actor = args.actor or _default_actor()
    try:
        register = open_register(args.register_url if args.register_url is not None else settings.register_url())
    except (ValueError, OSError) as exc:
        print(f"error: cannot open the request register: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, register, actor)
    except InvalidIdentifier as exc:
        # The operator's own terminal: the text may name the value they typed (never logged).
        print(f"error: {exc.terminal_text}; no case was created", file=sys.stderr)
        return 2
    except CaseNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CompactionPending as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return 4
    except RegisterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        register.close()


def _run(args: argparse.Namespace, register: Any, actor: str) -> int:
    cmd = args.request_command
    if cmd == "new":
        given: dict[str, Any] = {"emails": args.email, "phones": args.phone, "name": args.name,
                                 "organization": args.organization}
        if args.stdin:
            data = _stdin_json()
            given = {k: data.get(k) for k in ("emails", "phones", "name", "organization")}
            corrections = {**_stdin_corrections(data.get("corrections")), **(parse_pairs(args.correct) if args.correct else {})}
        else:
            corrections = parse_pairs(args.correct) if args.correct else {}
        case = open_case(register, args.kind, given, actor=actor, received_on=args.received, note=args.note,
                         corrections=corrections)
        if args.json:
            print(json.dumps(_case_json(case, full=False)))
        else:
            print(case.case_id)
            print(f"due {case.due_on}" + ("; FLAG: possibly chargeable (second access request within 12 months)"
                                          if case.possibly_chargeable else ""), file=sys.stderr)
        return 0
    if cmd == "list":
        if args.due:
            groups = register.due(today=today_helsinki(), soon_days=args.soon_days)
            rows = [("overdue", c) for c in groups["overdue"]] + [("due soon", c) for c in groups["due_soon"]]
            rows += [("answered; held until a legal hold ends", c) for c in groups["held"]]
        else:
            rows = [("", c) for c in register.list_cases(status=None if args.all else "open", kind=args.kind)]
        if args.json:
            print(json.dumps([dict(_case_json(c, full=False), due_state=label or None) for label, c in rows]))
        else:
            for label, c in rows:
                flags = " chargeable?" if c.possibly_chargeable else ""
                flags += " unverified" if not c.verified and c.status == "open" else ""
                print(f"{c.case_id}  {c.kind:<13} {c.status:<6} due {c.due_on}  {label}{flags}".rstrip())
        return 0
    if cmd == "show":
        case = register.get(args.case_id, with_audit=True)
        corrections = load_corrections(register, case.case_id) if case.kind == "rectification" else {}
        if args.json:
            print(json.dumps(dict(_case_json(case, full=True), corrections=corrections), ensure_ascii=False))
        else:
            _print_case(case)
            for field, value in corrections.items():
                print(f"  corrected {field}: {value}")
        return 0
    if cmd == "verify":
        case = register.verify(args.case_id, method=args.method, actor=actor)
    elif cmd == "extend":
        case = register.extend(args.case_id, new_due_on=args.until, reason=args.reason, told_on=args.told_on,
                               told_how=args.told_how, actor=actor)
    elif cmd == "approve":
        case = register.approve(args.case_id, action=args.action, actor=actor, note=args.note)
    elif cmd == "correct":
        corrections = _stdin_corrections(_stdin_json()) if args.stdin else parse_pairs(args.correct)
        save_corrections(register, args.case_id, corrections, actor=actor)
        case = register.get(args.case_id)
    elif cmd == "answer":
        case = answer_task(register, args.case_id, args.system, note=args.note, actor=actor)
    elif cmd == "lift-restriction":
        record_lift_decision(register, args.case_id, reason=args.reason, actor=actor)
        print(f"{args.case_id}: lift recorded; run the restriction job with lift: true to unmark the systems")
        return 0
    elif cmd == "close":
        case = register.close_case(args.case_id, outcome=args.outcome, actor=actor, force=args.force)
    elif cmd == "compact":
        register.compact()
        print("register compacted")
        return 0
    else:  # pragma: no cover - argparse rejects unknown commands
        return 2
    print(f"{case.case_id}: {cmd} recorded (due {case.due_on}, {case.status})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="contact-register")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
