"""Per-system pieces of the subject export, as a registry: ``EXPORTERS[system] -> Exporter``.

An exporter answers two questions for the records the warehouse links to the person:
``warehouse()`` reads them verbatim from ``raw_<system>.*`` (what the sync keeps), and
``live()`` reads from the system's API what the sync does not keep (mail, change history,
attachments ...). A system joins by registering an exporter::

    register_exporter(WarehouseExporter("netvisor", {"customer": "customers"}))

A processor of register.yaml with no exporter is answered by a manual task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb

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


class WarehouseExporter:
    """Reads the person's records verbatim from ``raw_<system>.<table>.record`` (JSON)."""

    def __init__(self, system: str, tables: dict[str, str], id_column: str = "id") -> None:
        self.system = system
        self.tables = tables  # record_kind (as in person_records) -> raw table
        self.id_column = id_column

    def has_raw(self, con: duckdb.DuckDBPyConnection) -> bool:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ?",
                                [f"raw_{self.system}"]).fetchone()[0])

    def warehouse(self, con: duckdb.DuckDBPyConnection, ids: dict[str, list[str]], out: SystemExport) -> None:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?",
                                             [f"raw_{self.system}"]).fetchall()}
        for kind, record_ids in sorted(ids.items()):
            table = self.tables.get(kind)
            if table is None or table not in present:
                out.notes.append(f"{len(record_ids)} {kind} records linked but not kept in the warehouse")
                continue
            # System and table names are constants of the registry; record ids are bound. An
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
            rows = con.execute(
                f'SELECT CAST({self.id_column} AS VARCHAR) AS rid, record FROM raw_{self.system}."{table}" '
                f"WHERE {where} ORDER BY {self.id_column}",
                [param],
            ).fetchall()
            recs = []
            for rid, record in rows:
                try:
                    value = json.loads(record) if isinstance(record, str) else record
                except ValueError:
                    value = {"_unparsed_record": record}
                recs.append(value if isinstance(value, dict) else {"id": rid, "value": value})
            missing = len(set(record_ids)) - len(rows)
            if missing:
                out.notes.append(f"{missing} {kind} records linked but missing from raw_{self.system}.{table}")
            out.records.setdefault(kind, []).extend(recs)

    def live(self, ctx: LiveContext, ids: dict[str, list[str]], out: SystemExport) -> None:
        """Nothing to read live by default."""


class PipedriveExporter(WarehouseExporter):
    """Pipedrive: persons, deals, activities and notes from the warehouse; live from the API
    the person's mail messages (the sync does not keep mail), their notes as they are now, and
    the person's change history (v1 ``/persons/{id}/flow``) where the API offers it."""

    def __init__(self) -> None:
        super().__init__("pipedrive", {"person": "persons", "deal": "deals", "activity": "activities",
                                       "note": "notes"})

    def live(self, ctx: LiveContext, ids: dict[str, list[str]], out: SystemExport) -> None:
        if not ctx.has("pipedrive"):
            out.notes.append("live reads skipped: mail messages and change history not read")
            return
        client = ctx.client("pipedrive")
        person_ids = sorted({int(i) for i in ids.get("person", []) if str(i).isdigit()})
        mails: list[dict] = []
        notes = {str(n.get("id")): n for n in out.records.get("note", [])}
        flow: list[dict] = []
        flow_missing = 0
        gone = 0
        for pid in person_ids:
            try:
                for item in client.mail_messages(pid):
                    data = item.get("data") if isinstance(item, dict) and "data" in item else item
                    if isinstance(data, dict):
                        mails.append(data)
                for note in client.notes_for_person(pid):
                    if isinstance(note, dict) and note.get("id") is not None:
                        notes[str(note["id"])] = note  # the current version wins over the synced one
            except NotFoundError:
                gone += 1
                continue
            try:
                for change in client._v1_list(
                    lambda p, pid=pid: client.v1._get(f"{client.v1.BASE_URL}persons/{pid}/flow", params=p), {}
                ):
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
        if notes:
            out.records["note"] = sorted(notes.values(), key=lambda n: int(n["id"]) if str(n["id"]).isdigit() else 0)
        if flow:
            out.records["change"] = flow


EXPORTERS: dict[str, WarehouseExporter] = {}


def register_exporter(exporter: WarehouseExporter) -> None:
    EXPORTERS[exporter.system] = exporter


register_exporter(PipedriveExporter())

__all__ = ["Attachment", "EXPORTERS", "LiveContext", "PipedriveExporter", "SystemExport",
           "WarehouseExporter", "register_exporter"]
