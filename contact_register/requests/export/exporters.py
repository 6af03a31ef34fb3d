"""Per-system pieces of the subject export, as a registry: ``EXPORTERS[system] -> Exporter``.

An exporter answers two questions about one person:
``warehouse()`` reads the records the warehouse links to them verbatim from ``raw_<system>.*``
(what the sync keeps), and ``live()`` reads from the system's API what the sync does not keep
(mail, change history, attachments ...). A system joins with one line in ``registry.py`` (``EXPORTERS``), the one table of them. A
processor of register.yaml with no exporter is answered by a manual task. Live reads get
their API client from ``Clients``, whose factories come from
``assets.system_resources`` (system -> Dagster resource).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any, Callable

import duckdb

from connectors.google_workspace import DRIVE_FILE_FIELDS
from connectors.errors import NotFoundError
from contact_register.requests.export import google_find


@dataclass
class Attachment:
    """An original file. ``name`` must be built from record ids only (no personal data)."""

    record_kind: str
    record_id: str
    name: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass
class SystemExport:
    system: str
    state: str = "not_found"  # found | not_found | failed | manual_open
    records: dict[str, list[dict]] = field(default_factory=dict)  # record_kind -> records
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read and why (no personal data)
    error: str | None = None
    # The system's answer cannot prove absence (Matomo's empty list when a plugin or a site's log
    # is off): finding nothing is then a manual check, never "not found".
    unverified: bool = False

    def count(self) -> int:
        return sum(len(v) for v in self.records.values())

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in sorted(self.records.items()) if v}

    def merge(self, kind: str, live: list[dict], key: str = "id") -> None:
        """Put live records beside (or over: the current version wins) the synced ones of ``kind``."""
        by_id = {str(r.get(key)): r for r in self.records.get(kind, [])}
        for r in live:
            by_id[str(r.get(key))] = {**by_id.get(str(r.get(key)), {}), **r}
        if by_id:
            self.records[kind] = sorted(by_id.values(), key=lambda r: _id_order(r.get(key)))


def _id_order(value: Any) -> tuple:
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


@dataclass
class PersonRef:
    """What an exporter finds the person by: the warehouse's record ids of its system
    (``records``: record_kind -> ids) and the person's own identifiers for live searches
    (normalised ``emails`` and E.164 ``phones`` that nobody else uses: never a shared mailbox)."""

    records: dict[str, list[str]] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


# -- Others' data -------------------------------------------------------------------------
# The package holds the subject's own data and, of other people, only what makes it
# intelligible (GDPR art. 15(4): the copy must not adversely affect the rights of others):
# - a message the subject sent or received, whole (body and attachments: their own
#   correspondence), with its headers as the subject saw them: From, To, Cc, Reply-To, Date,
#   Subject are what every recipient sees; a Bcc list is shown only to its author, so Bcc (and
#   the delivery traces Delivered-To/X-Original-To/Envelope-To/X-Forwarded-To, which name the
#   mailbox a copy went to) keep only the subject's own addresses, unless the subject sent the
#   message: then its Bcc list is theirs;
# - never a message that was neither sent by nor to the subject (in a ticket shared with other
#   customers: their messages to support, RT's auto-replies and notifications to them), and
#   never the contents of a file someone else owns: of a Drive file shared with the subject only
#   its metadata (name, owner, the subject's own sharing entry);
# - meeting invitations as the subject received them (the guest list, unless the organiser hid it).
HIDDEN_RECIPIENT_HEADERS = frozenset({"bcc", "resent-bcc", "delivered-to", "x-original-to", "envelope-to",
                                      "x-forwarded-to"})
_SENDER_HEADERS = frozenset({"from", "sender"})
_HEADER_FIELD = re.compile(r"\r?\n(?![ \t])")


def _addresses(value: str) -> list[str]:
    return [a.strip().lower() for _, a in getaddresses([value]) if "@" in a]


def _sent_by(fields: list[tuple[str, str]], own: set[str]) -> bool:
    return any(set(_addresses(v)) & own for n, v in fields if n.strip().lower() in _SENDER_HEADERS)


def visible_headers(fields: list[tuple[str, str]], own: set[str]) -> list[tuple[str, str]]:
    """The (name, value) header fields of one message as the subject (addresses ``own``, lower
    case) saw it: hidden-recipient fields keep only the subject's addresses and disappear when
    none is left; the Bcc of a message the subject sent is kept whole."""
    sent = _sent_by(fields, own)
    out = []
    for name, value in fields:
        key = name.strip().lower()
        if key not in HIDDEN_RECIPIENT_HEADERS or (sent and key in ("bcc", "resent-bcc")):
            out.append((name, value))
            continue
        mine = [a for a in _addresses(value) if a in own]
        if mine:
            out.append((name, ", ".join(mine)))
    return out


def visible_header_text(text: str, own: set[str]) -> str:
    """``visible_headers`` over a header block as text ("Name: value" lines, folded lines
    starting with white space), the way RT stores an attachment's headers and a message
    starts. Fields left as they were keep their exact text (folding included)."""
    raws = [r for r in _HEADER_FIELD.split(text) if r]
    fields = []
    for raw in raws:
        name, sep, value = raw.partition(":")
        fields.append((name, re.sub(r"\r?\n[ \t]+", " ", value).strip()) if sep else (raw, ""))
    kept = visible_headers(fields, own)
    if kept == fields:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    out, i = [], 0
    for raw, field_ in zip(raws, fields):
        if i < len(kept) and kept[i] == field_:
            out.append(raw)
            i += 1
        elif i < len(kept) and kept[i][0] == field_[0]:
            out.append(f"{kept[i][0]}: {kept[i][1]}")  # a hidden-recipient field cut to the subject's own
            i += 1
    return newline.join(out)


def visible_message(raw: bytes, own: set[str]) -> bytes:
    """An RFC 822 message with its header block cut by ``visible_headers``; the body (text and
    attachments) stays byte for byte. Header bytes that are not UTF-8 survive unchanged."""
    split = re.search(rb"\r?\n\r?\n", raw)
    head, body = (raw[:split.start()], raw[split.start():]) if split else (raw, b"")
    text = head.decode("utf-8", errors="surrogateescape")
    cut = visible_header_text(text, own)
    return raw if cut == text else cut.encode("utf-8", errors="surrogateescape") + body


class Clients:
    """Factories of API clients by system; ``client(system)`` opens one on first use."""

    def __init__(self, factories: dict[str, Callable[[], Any]] | None = None) -> None:
        self._factories = factories or {}
        self._clients: dict[str, Any] = {}

    def has(self, system: str) -> bool:
        return system in self._factories

    def client(self, system: str) -> Any:
        if system not in self._clients:
            self._clients[system] = self._factories[system]()
        return self._clients[system]

    def close(self) -> None:
        for c in self._clients.values():
            close = getattr(c, "close", None)
            if close:
                close()
        self._clients.clear()


class Exporter:
    """Reads the person's records verbatim from ``raw_<system>.<table>`` (the JSON ``record``
    column, or the whole row where ``record_columns`` maps the table to None). A linked kind
    with no raw table is a record the warehouse derived itself (e.g. "this address wrote to
    us"): its row of ``staging.source_persons`` is exported instead. ``live()`` reads nothing."""

    def __init__(self, system: str, tables: dict[str, str], id_column: str = "id",
                 record_columns: dict[str, str | None] | None = None) -> None:
        self.system = system
        self.tables = tables  # record_kind (as in person_records) -> raw table
        self.id_column = id_column
        self.record_columns = record_columns or {}  # raw table -> JSON column (None: every column)

    def has_raw(self, con: duckdb.DuckDBPyConnection) -> bool:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ?",
                                [f"raw_{self.system}"]).fetchone()[0])

    def warehouse(self, con: duckdb.DuckDBPyConnection, ids: dict[str, list[str]], out: SystemExport) -> None:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?",
                                             [f"raw_{self.system}"]).fetchall()}
        for kind, record_ids in sorted(ids.items()):
            table = self.tables.get(kind)
            if table is None:
                self._derived(con, kind, record_ids, out)
                continue
            if table not in present:
                out.notes.append(f"{len(record_ids)} {kind} records linked but not kept in the warehouse")
                continue
            rows = self._rows(con, table, record_ids)
            recs = []
            for rid, record in rows:
                try:
                    value = json.loads(record) if isinstance(record, str) else record
                except ValueError:
                    value = {"_unparsed_record": record}
                value = value if isinstance(value, dict) else {"value": value}
                value.setdefault("id", rid)  # every exported record names its record id
                recs.append(value)
            missing = len(set(record_ids)) - len(rows)
            if missing:
                out.notes.append(f"{missing} {kind} records linked but missing from raw_{self.system}.{table}")
            out.records.setdefault(kind, []).extend(recs)

    def _rows(self, con: duckdb.DuckDBPyConnection, table: str, record_ids: list[str]) -> list[tuple[str, Any]]:
        # System, table and column names are constants of the registry; record ids are bound. An
        # integer id column is compared as integers: its min/max zone maps then skip almost
        # every row group (a cast to text would scan the whole table).
        id_type = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? AND column_name = ?",
            [f"raw_{self.system}", table, self.id_column]).fetchone()
        numeric = id_type is not None and id_type[0] in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT")
        if numeric and all(str(i).lstrip("-").isdigit() for i in record_ids):
            where, param = f"{self.id_column} = ANY(?::BIGINT[])", sorted({int(i) for i in record_ids})
        else:
            where, param = f"CAST({self.id_column} AS VARCHAR) = ANY(?::VARCHAR[])", sorted(set(record_ids))
        column = self.record_columns.get(table, "record")
        source = f'raw_{self.system}."{table}"'
        if column is None:
            cur = con.execute(f"SELECT * FROM {source} WHERE {where} ORDER BY {self.id_column}", [param])
            names = [d[0] for d in cur.description]
            return [(str(r[names.index(self.id_column)]), dict(zip(names, r))) for r in cur.fetchall()]
        return con.execute(
            f"SELECT CAST({self.id_column} AS VARCHAR), {column} FROM {source} WHERE {where} ORDER BY {self.id_column}",
            [param],
        ).fetchall()

    def _derived(self, con: duckdb.DuckDBPyConnection, kind: str, record_ids: list[str], out: SystemExport) -> None:
        cur = con.execute(
            "SELECT * FROM staging.source_persons WHERE system = ? AND record_kind = ? "
            "AND record_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY record_id",
            [self.system, kind, sorted(set(record_ids))])
        names = [d[0] for d in cur.description]
        recs = [{"id": row["record_id"], **row} for row in (dict(zip(names, r)) for r in cur.fetchall())]
        if len(recs) < len(set(record_ids)):
            out.notes.append(f"{len(set(record_ids)) - len(recs)} {kind} records linked but not kept in the warehouse")
        if recs:
            out.records.setdefault(kind, []).extend(recs)

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        """Nothing to read live by default."""

    def scope(self, person: PersonRef, out: SystemExport) -> None:
        """Cut what was read down to what the package may hold (see "Others' data" above):
        called after ``warehouse()`` and ``live()``; nothing to cut by default."""


class PipedriveExporter(Exporter):
    """Pipedrive: persons, deals, activities and notes from the warehouse; live from the API
    the person's mail messages (the sync does not keep mail), their notes as they are now, and
    the person's change history (v1 ``/persons/{id}/flow``: field changes, notes, activities)."""

    def __init__(self) -> None:
        super().__init__("pipedrive", {"person": "persons", "deal": "deals", "activity": "activities",
                                       "note": "notes"})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        person_ids = sorted({int(i) for i in person.records.get("person", []) if str(i).isdigit()})
        if not person_ids:
            return
        client = ctx.client("pipedrive")
        mails: list[dict] = []
        notes: list[dict] = []
        flow: list[dict] = []
        flow_missing = 0
        gone = 0
        for pid in person_ids:
            try:
                for item in client.mail_messages(pid):
                    data = item.get("data") if isinstance(item, dict) and "data" in item else item
                    if isinstance(data, dict):
                        mails.append(data)
                notes += [n for n in client.notes_for_person(pid) if isinstance(n, dict) and n.get("id") is not None]
            except NotFoundError:
                gone += 1
                continue
            try:
                for change in client.person_flow(pid):
                    if isinstance(change, dict):
                        flow.append({"person_id": pid, **change})
            except NotFoundError:
                flow_missing += 1
        if gone:
            out.notes.append(f"{gone} person records no longer exist in Pipedrive (deleted since the last sync)")
        if flow_missing:
            out.notes.append("change history (persons/{id}/flow) not available from this Pipedrive API "
                             f"for {flow_missing} person records")
        if mails:
            out.records["mail_message"] = sorted(mails, key=lambda m: (str(m.get("message_time")), str(m.get("id"))))
        out.merge("note", notes)  # the current version of a note wins over the synced one
        if flow:
            # A flow item has no id of its own: it is the change (or note, activity) it wraps.
            out.records["change"] = [{"id": f"{c['person_id']}:{c.get('object')}:{(c.get('data') or {}).get('id')}",
                                      **c} for c in flow]

    def scope(self, person: PersonRef, out: SystemExport) -> None:
        # A note or activity of the person may hang on someone else's deal or name another
        # person as its main contact: of such a record only its id stays, not its title or name.
        deals = {str(d.get("id")) for d in out.records.get("deal", [])}
        persons = {str(p) for p in person.records.get("person", [])}
        for r in [*out.records.get("note", []), *out.records.get("activity", []),
                  *(c.get("data") for c in out.records.get("change", []))]:
            if not isinstance(r, dict):
                continue
            if r.get("deal_id") is not None and str(r["deal_id"]) not in deals:
                r.pop("deal", None), r.pop("deal_title", None)
            if r.get("person_id") is not None and str(r["person_id"]) not in persons:
                r.pop("person", None), r.pop("person_name", None)
        # A mail's Bcc parties are shown to its sender only (see "Others' data").
        own = {e.strip().lower() for e in person.emails}
        for m in out.records.get("mail_message", []):
            parties = [p for p in m.get("from") or [] if isinstance(p, dict)]
            sent = any(str(p.get("email_address") or "").strip().lower() in own for p in parties)
            if isinstance(m.get("bcc"), list) and not sent:
                m["bcc"] = [p for p in m["bcc"] if isinstance(p, dict)
                            and str(p.get("email_address") or "").strip().lower() in own]


class GoogleExporter(Exporter):
    """Google Workspace: contacts, calendar events, Drive file metadata and Gmail headers from
    the warehouse, and the address-like records (who wrote, met, shared) it derived; live, for
    each of the person's own addresses (``google_find.find`` over every mailbox): every
    message they sent or received as the original (RFC 822 with attachments), Drive files
    shared with them as metadata as Drive has it now, the contents only of files they own,
    events and contacts. Files are named ``gmail/<user id>-<message id>.eml`` and
    ``drive/<file id>.bin``. ``scope()`` cuts the headers and Drive sharing lists."""

    def __init__(self) -> None:
        super().__init__("google", {"contact": "contacts", "other_contact": "contacts",
                                    "calendar_event": "calendar_events", "drive_file": "drive_files",
                                    "gmail_message": "gmail_messages"},
                         record_columns={"gmail_messages": None})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        if not person.emails:
            return
        client = ctx.client("google")
        drive = client.service("drive").files()
        messages: dict[str, dict] = {}
        metadata: dict[str, dict] = {}
        contents: dict[str, dict] = {}
        events: dict[str, dict] = {}
        lists: set[str] = set()
        for email in person.emails:
            found = google_find.find(client, email)
            by_user: dict[str, list[dict]] = {}
            for m in found.gmail:
                by_user.setdefault(m["user"], []).append(m)
            for user, hits in by_user.items():
                got, _gone = client.gmail_get_many(user, [m["message_id"] for m in hits], fmt="raw")
                for m in hits:
                    key = f"{m['user_id']}-{m['message_id']}"
                    msg = got.get(m["message_id"])
                    if msg is None or key in messages:
                        continue
                    raw = base64.urlsafe_b64decode(msg["raw"] + "=" * (-len(msg["raw"]) % 4))
                    messages[key] = {"id": key, "user_id": m["user_id"], "message_id": m["message_id"],
                                     "file": f"attachments/google/gmail/{key}.eml", "bytes": len(raw)}
                    out.attachments.append(Attachment("gmail_message_content", key, f"gmail/{key}.eml",
                                                      raw, "message/rfc822"))
            for f in found.drive:
                fid = f["file_id"]
                metadata[fid] = client.execute(drive.get(fileId=fid, fields=DRIVE_FILE_FIELDS),
                                               f["user"])
                # The bytes of a file are its owner's: only a file the subject owns goes in whole.
                if f["owner"] and fid not in contents:
                    data = client.execute(drive.get_media(fileId=fid), f["user"])
                    data = data if isinstance(data, bytes) else bytes(data)
                    contents[fid] = {"id": fid, "file": f"attachments/google/drive/{fid}.bin", "bytes": len(data)}
                    out.attachments.append(Attachment("drive_file_content", fid, f"drive/{fid}.bin", data))
            for ev in found.calendar:
                key = f"{ev['user_id']}-{ev['event_id']}"
                events[key] = {"id": key, "user_id": ev["user_id"], "event_id": ev["event_id"],
                               "attendees": ev["attendees"]}
            lists.update(found.groups)
        for note in google_find.ALWAYS_NOTES:
            if note not in out.notes:
                out.notes.append(note)
        if messages:
            out.records["gmail_message_content"] = list(messages.values())
        out.merge("drive_file", list(metadata.values()))  # Drive's current metadata wins over the synced
        if contents:
            out.records["drive_file_content"] = list(contents.values())
        not_owned = len(set(metadata) - set(contents))
        if not_owned:
            out.notes.append(f"{not_owned} Drive files shared with the person belong to others: their metadata "
                             "and the person's own sharing are included, not the files' contents")
        if events:
            out.records["calendar_attendance"] = list(events.values())
        if lists:
            out.records["mailing_list"] = [{"id": g} for g in sorted(lists)]

    def scope(self, person: PersonRef, out: SystemExport) -> None:
        own = {e.strip().lower() for e in person.emails}
        for r in out.records.get("gmail_message", []):
            headers = json.loads(r["headers"]) if isinstance(r.get("headers"), str) else r.get("headers")
            if isinstance(headers, list):
                r["headers"] = [list(h) for h in visible_headers([(str(n), str(v)) for n, v in headers], own)]
        for a in out.attachments:
            if a.record_kind == "gmail_message_content":
                a.data = visible_message(a.data, own)
        for r in out.records.get("drive_file", []):
            # Anyone-with-link and domain entries name nobody; a person's entry is theirs only.
            if isinstance(r.get("permissions"), list):
                r["permissions"] = [p for p in r["permissions"] if not isinstance(p, dict)
                                    or p.get("type") not in ("user", "group") or p.get("role") == "owner"
                                    or str(p.get("emailAddress") or "").strip().lower() in own]
        for kind in ("calendar_event", "calendar_attendance"):
            for r in out.records.get(kind, []):
                if r.get("guestsCanSeeOtherGuests") is False and isinstance(r.get("attendees"), list):
                    r["attendees"] = [a for a in r["attendees"] if not isinstance(a, dict) or a.get("organizer")
                                      or str(a.get("email") or "").strip().lower() in own]


class NetvisorExporter(Exporter):
    """Netvisor: customers and contact persons and the invoices naming them from the warehouse;
    live, every invoice of their customers with its billing-contact fields as Netvisor has them
    now (``invoices_of_customer``), kept where the invoice names the person: their contact
    person record, or they are the (private) customer."""

    def __init__(self) -> None:
        super().__init__("netvisor", {"customer": "customers", "contact_person": "contact_persons",
                                      "invoice": "invoices"})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        contact_ids = {int(r["id"]) for r in out.records.get("contact_person", []) if str(r.get("id")).isdigit()}
        private = {int(r["id"]) for r in out.records.get("customer", [])
                   if str(r.get("id")).isdigit() and str(r.get("is_private_customer")) in ("1", "true", "True")}
        customers = sorted(private | {int(r["customer_id"]) for r in out.records.get("contact_person", [])
                                      if str(r.get("customer_id")).isdigit()})
        if not customers:
            return
        client = ctx.client("netvisor")
        invoices = []
        for customer_id in customers:
            for inv in client.invoices_of_customer(customer_id):
                if customer_id in private or inv.get("contact_person_netvisor_key") in contact_ids:
                    invoices.append({"id": inv.get("netvisor_key"), **inv})
        out.merge("invoice", invoices)


# RT transactions that carry a message (their attachments are its headers, body and files).
RT_MESSAGE_TRANSACTIONS = frozenset({"Create", "Correspond", "Comment", "EmailRecord", "CommentEmailRecord",
                                     "Forward Transaction", "Forward Ticket"})
_RT_RECIPIENT_HEADERS = frozenset({"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"})


def _ref(value: Any) -> str:
    return str(value.get("id") if isinstance(value, dict) else value)


def _without_links(value: Any) -> Any:
    """``value`` without REST2's ``_url`` links, at any depth."""
    if isinstance(value, dict):
        return {k: _without_links(v) for k, v in value.items() if k != "_url"}
    if isinstance(value, list):
        return [_without_links(v) for v in value]
    return value


class RequestTrackerExporter(Exporter):
    """Request Tracker: the person's user records and tickets from the warehouse; live,
    ``RequestTrackerClient.export_subject`` for each of their addresses: the user as RT has it
    now, every ticket they are a requestor, Cc or AdminCc of with its transactions, and the
    attachments (message bodies and files) of the messages they sent or received as the
    original bytes, named ``<ticket id>/<attachment id><extension of its content type>``.

    A ticket whose customers (requestors and Ccs) are only the person is theirs whole. In a
    ticket shared with other customers a message goes in only when the person wrote it (its
    creator is their user) or its own To/Cc/Bcc headers name them: the mails others sent to
    support alone, RT's auto-replies and notifications to the others and internal comments are
    left out. What RT mailed to the person is there as RT's record of that mail (EmailRecord),
    which holds the message as they received it. Field changes (status, owner ...) stay."""

    def __init__(self) -> None:
        super().__init__("request_tracker", {"user": "users", "ticket": "tickets"})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        linked = {str(i) for i in person.records.get("user", [])}
        emails = {e.strip().casefold() for e in person.emails}
        emails |= {str(u.get("EmailAddress") or "").strip().casefold() for u in out.records.get("user", [])} - {""}
        if not emails:
            return
        client = ctx.client("request_tracker")
        users, tickets, transactions, attachments = [], {}, {}, {}
        left_out = 0
        packages = []
        for email in sorted(emails):
            package = client.export_subject(email)
            mine = [u for u in package["users"] if str(u.get("id")) in linked
                    or str(u.get("EmailAddress") or "").strip().casefold() in emails]
            if mine:
                users += mine
                packages.append(package)
        user_ids = {str(u.get("id")) for u in users}
        for package in packages:
            for t in package["tickets"]:
                ticket = t["ticket"]
                tid = str(ticket.get("id"))
                if tid in tickets:
                    continue
                tickets[tid] = ticket
                customers = {_ref(w) for role in ("Requestor", "Cc") for w in t["ticket"].get(role) or []}
                kept = self._kept_transactions(t, user_ids, emails, shared=bool(customers - user_ids))
                left_out += sum(1 for tr in t["transactions"] if str(tr.get("id")) not in kept)
                for tr in t["transactions"]:
                    if str(tr.get("id")) in kept:
                        transactions[str(tr.get("id"))] = {"ticket_id": tid, **tr}
                for a in t["attachments"]:
                    if str(a.get("transaction_id")) in kept:
                        headers = a.get("headers")
                        a = {**a, "headers": visible_header_text(headers, emails) if isinstance(headers, str)
                             else headers}
                        attachments[str(a["id"])] = (tid, a)
        out.merge("user", users)
        out.merge("ticket", list(tickets.values()))
        if transactions:
            out.records["transaction"] = sorted(transactions.values(), key=lambda r: _id_order(r.get("id")))
        if left_out:
            out.notes.append(f"{left_out} messages in tickets shared with other customers were neither sent by nor "
                             "to the person (others' mail to support, auto-replies and notices to them, internal "
                             "comments): left out")
        metas = []
        for aid, (tid, a) in sorted(attachments.items(), key=lambda kv: _id_order(kv[0])):
            meta = {k: v for k, v in a.items() if k != "content_base64"}
            try:
                data = base64.b64decode(a.get("content_base64") or "")
            except ValueError:
                meta["content_unreadable"] = True
                metas.append({"ticket_id": tid, **meta})
                continue
            if not data:  # a multipart container: its parts are attachments of their own
                metas.append({"ticket_id": tid, **meta, "bytes": 0})
                continue
            ctype = str(a.get("content_type") or "application/octet-stream").split(";")[0].strip().lower()
            name = f"{tid}/{aid}{mimetypes.guess_extension(ctype) or '.bin'}"
            out.attachments.append(Attachment("attachment", aid, name, data, ctype))
            metas.append({"ticket_id": tid, **meta, "file": f"attachments/request_tracker/{name}", "bytes": len(data)})
        if metas:
            out.records["attachment"] = metas
        if not users and person.records.get("user"):
            out.notes.append("the person's Request Tracker users no longer exist (removed since the last sync)")

    def scope(self, person: PersonRef, out: SystemExport) -> None:
        # AdminCcs are staff copied in silence (RT mails them as Bcc): only the person's own entry.
        mine = {str(u.get("id")) for u in out.records.get("user", [])}
        for ticket in out.records.get("ticket", []):
            if isinstance(ticket.get("AdminCc"), list):
                ticket["AdminCc"] = [w for w in ticket["AdminCc"] if _ref(w) in mine]
        # REST2 links name a user by their user name, often an address: a reference keeps its id.
        for kind in ("ticket", "transaction", "attachment"):
            if kind in out.records:
                out.records[kind] = [_without_links(r) for r in out.records[kind]]

    @staticmethod
    def _kept_transactions(t: dict, user_ids: set[str], emails: set[str], shared: bool) -> set[str]:
        """Ids of the ticket's transactions that go in: see the class docstring."""
        recipients: dict[str, set[str]] = {}  # transaction id -> addresses its message headers name
        for a in t["attachments"]:
            headers = a.get("headers")
            if not isinstance(headers, str):
                continue
            for line in _HEADER_FIELD.split(headers):
                name, sep, value = line.partition(":")
                if sep and name.strip().lower() in _RT_RECIPIENT_HEADERS:
                    recipients.setdefault(str(a.get("transaction_id")), set()).update(_addresses(value))
        kept = set()
        for tr in t["transactions"]:
            tid = str(tr.get("id"))
            if (not shared or tr.get("Type") not in RT_MESSAGE_TRANSACTIONS or _ref(tr.get("Creator")) in user_ids
                    or recipients.get(tid, set()) & emails):
                kept.add(tid)
        return kept


__all__ = ["Attachment", "Exporter", "GoogleExporter", "Clients", "NetvisorExporter", "PersonRef",
           "PipedriveExporter", "RequestTrackerExporter", "SystemExport"]
