"""Per-system pieces of the subject export, as a registry: ``EXPORTERS[system] -> Exporter``.

An exporter answers two questions about one person:
``warehouse()`` reads the records the warehouse links to them verbatim from ``raw_<system>.*``
(what the sync keeps), and ``live()`` reads from the system's API what the sync does not keep
(mail, change history, attachments ...). A system joins with one call, from its own module::

    register_exporter(Exporter("trustmary", {}))        # or a subclass with its own live()

and that module is imported once (``pipelines.jobs.exporters`` imports nothing of it). A
processor of register.yaml with no exporter is answered by a manual task. Live reads get
their API client from ``LiveContext``, whose factories come from
``pipelines.system_resources`` (system -> Dagster resource).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb

from connectors import google_workspace_ops
from connectors.errors import NotFoundError


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


class LiveContext:
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

    def live(self, ctx: LiveContext, person: PersonRef, out: SystemExport) -> None:
        """Nothing to read live by default."""


class PipedriveExporter(Exporter):
    """Pipedrive: persons, deals, activities and notes from the warehouse; live from the API
    the person's mail messages (the sync does not keep mail), their notes as they are now, and
    the person's change history (v1 ``/persons/{id}/flow``: field changes, notes, activities)."""

    def __init__(self) -> None:
        super().__init__("pipedrive", {"person": "persons", "deal": "deals", "activity": "activities",
                                       "note": "notes"})

    def live(self, ctx: LiveContext, person: PersonRef, out: SystemExport) -> None:
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


class GoogleExporter(Exporter):
    """Google Workspace: contacts, calendar events, Drive file metadata and Gmail headers from
    the warehouse, and the address-like records (who wrote, met, shared) it derived; live, for
    each of the person's own addresses, ``google_workspace_ops.export``: every mailbox's full
    messages (RFC 822 with attachments), the contents of files shared with them, events and
    contacts. Files are named ``gmail/<user id>-<message id>.eml`` and ``drive/<file id>.bin``."""

    def __init__(self) -> None:
        super().__init__("google", {"contact": "contacts", "other_contact": "contacts",
                                    "calendar_event": "calendar_events", "drive_file": "drive_files",
                                    "gmail_message": "gmail_messages"},
                         record_columns={"gmail_messages": None})

    def live(self, ctx: LiveContext, person: PersonRef, out: SystemExport) -> None:
        if not person.emails:
            return
        client = ctx.client("google")
        messages: dict[str, dict] = {}
        files: dict[str, dict] = {}
        events: dict[str, dict] = {}
        lists: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="subject-export-google-") as tmp:
            for n, email in enumerate(person.emails):
                folder = Path(tmp) / str(n)  # per address: an index, never the address itself
                done = google_workspace_ops.export(client, email, folder)
                for note in done.get("notes") or []:
                    if note not in out.notes:
                        out.notes.append(note)
                for path in sorted((folder / "gmail").glob("*.eml")):
                    data = path.read_bytes()
                    user_id, _, message_id = path.stem.partition("-")
                    if path.stem not in messages:
                        messages[path.stem] = {"id": path.stem, "user_id": user_id, "message_id": message_id,
                                               "file": f"attachments/google/gmail/{path.name}", "bytes": len(data)}
                        out.attachments.append(Attachment("gmail_message_content", path.stem, f"gmail/{path.name}",
                                                          data, "message/rfc822"))
                for path in sorted((folder / "drive").glob("*.bin")):
                    data = path.read_bytes()
                    if path.stem not in files:
                        files[path.stem] = {"id": path.stem, "file": f"attachments/google/drive/{path.name}",
                                            "bytes": len(data)}
                        out.attachments.append(Attachment("drive_file_content", path.stem, f"drive/{path.name}", data))
                for path in sorted((folder / "calendar").glob("*.json")):
                    user_id, _, event_id = path.stem.partition("-")
                    events[path.stem] = {"id": path.stem, "user_id": user_id, "event_id": event_id,
                                         "attendees": json.loads(path.read_text())}
                found = json.loads((folder / "contacts" / "contacts.json").read_text())
                lists.update(found.get("mailing_lists") or [])
        if messages:
            out.records["gmail_message_content"] = list(messages.values())
        if files:
            out.records["drive_file_content"] = list(files.values())
        if events:
            out.records["calendar_attendance"] = list(events.values())
        if lists:
            out.records["mailing_list"] = [{"id": g} for g in sorted(lists)]


class NetvisorExporter(Exporter):
    """Netvisor: customers and contact persons and the invoices naming them from the warehouse;
    live, every invoice of their customers with its billing-contact fields as Netvisor has them
    now (``invoices_of_customer``), kept where the invoice names the person: their contact
    person record, or they are the (private) customer."""

    def __init__(self) -> None:
        super().__init__("netvisor", {"customer": "customers", "contact_person": "contact_persons",
                                      "invoice": "invoices"})

    def live(self, ctx: LiveContext, person: PersonRef, out: SystemExport) -> None:
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


class RequestTrackerExporter(Exporter):
    """Request Tracker: the person's user records and tickets from the warehouse; live,
    ``RequestTrackerClient.export_subject`` for each of their addresses: the user as RT has it
    now, every ticket they are a requestor, Cc or AdminCc of with all its transactions, and
    every attachment (message bodies and files) as the original bytes, named
    ``<ticket id>/<attachment id><extension of its content type>``."""

    def __init__(self) -> None:
        super().__init__("request_tracker", {"user": "users", "ticket": "tickets"})

    def live(self, ctx: LiveContext, person: PersonRef, out: SystemExport) -> None:
        linked = {str(i) for i in person.records.get("user", [])}
        emails = {e.strip().casefold() for e in person.emails}
        emails |= {str(u.get("EmailAddress") or "").strip().casefold() for u in out.records.get("user", [])} - {""}
        if not emails:
            return
        client = ctx.client("request_tracker")
        users, tickets, transactions, attachments = [], {}, {}, {}
        for email in sorted(emails):
            package = client.export_subject(email)
            mine = [u for u in package["users"] if str(u.get("id")) in linked
                    or str(u.get("EmailAddress") or "").strip().casefold() in emails]
            if not mine:
                continue
            users += mine
            for t in package["tickets"]:
                ticket = t["ticket"]
                tid = str(ticket.get("id"))
                tickets[tid] = ticket
                for tr in t["transactions"]:
                    transactions[str(tr.get("id"))] = {"ticket_id": tid, **tr}
                for a in t["attachments"]:
                    attachments[str(a["id"])] = (tid, a)
        out.merge("user", users)
        out.merge("ticket", list(tickets.values()))
        if transactions:
            out.records["transaction"] = sorted(transactions.values(), key=lambda r: _id_order(r.get("id")))
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


EXPORTERS: dict[str, Exporter] = {}


def register_exporter(exporter: Exporter) -> None:
    EXPORTERS[exporter.system] = exporter


for _exporter in (PipedriveExporter(), GoogleExporter(), NetvisorExporter(), RequestTrackerExporter()):
    register_exporter(_exporter)

__all__ = ["Attachment", "EXPORTERS", "Exporter", "GoogleExporter", "LiveContext", "NetvisorExporter", "PersonRef",
           "PipedriveExporter", "RequestTrackerExporter", "SystemExport", "register_exporter"]

import pipelines.jobs.exporters_small  # noqa: E402,F401 - registers Trustmary, Matomo and Docue (needs the names above)
