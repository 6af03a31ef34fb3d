"""Pipedrive records -> raw table rows: the record verbatim plus the keys the warehouse needs.

Extraction never raises on a bad record. A field of the wrong shape (null where a list belongs,
a number where text belongs, invalid code points) yields NULL or an empty list for that key
and an issue ``(record_id, problem)``; the record itself is always stored verbatim in
``record``. Problem texts name fields, never values, so they hold no personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from contact_register.sync.raw_store import TableSpec, clean_text, json_text
from connectors.pipedrive import parse_time

COMMON = (("id", "BIGINT"), ("update_time", "TIMESTAMPTZ"), ("add_time", "TIMESTAMPTZ"))
TAIL = (("custom_fields_named", "JSON"), ("record", "JSON"), ("synced_at", "TIMESTAMPTZ"))

SPECS: dict[str, TableSpec] = {
    "persons": TableSpec("persons", COMMON + (
        ("name", "VARCHAR"), ("first_name", "VARCHAR"), ("last_name", "VARCHAR"),
        ("org_id", "BIGINT"), ("owner_id", "BIGINT"),
        ("emails", "VARCHAR[]"), ("phones", "VARCHAR[]"), ("primary_email", "VARCHAR"),
        ("job_title", "VARCHAR"), ("marketing_status", "VARCHAR"), ("label_ids", "BIGINT[]"),
    ) + TAIL),
    "organizations": TableSpec("organizations", COMMON + (
        ("name", "VARCHAR"), ("owner_id", "BIGINT"), ("address", "VARCHAR"),
    ) + TAIL),
    "deals": TableSpec("deals", COMMON + (
        ("title", "VARCHAR"), ("person_id", "BIGINT"), ("org_id", "BIGINT"), ("owner_id", "BIGINT"),
        ("status", "VARCHAR"), ("value", "DOUBLE"), ("currency", "VARCHAR"),
    ) + TAIL),
    "activities": TableSpec("activities", COMMON + (
        ("subject", "VARCHAR"), ("type", "VARCHAR"), ("person_id", "BIGINT"), ("org_id", "BIGINT"),
        ("deal_id", "BIGINT"), ("owner_id", "BIGINT"), ("participant_person_ids", "BIGINT[]"),
        ("attendee_emails", "VARCHAR[]"), ("due_date", "VARCHAR"), ("done", "BOOLEAN"),
    ) + TAIL),
    "notes": TableSpec("notes", COMMON + (
        ("person_id", "BIGINT"), ("org_id", "BIGINT"), ("deal_id", "BIGINT"), ("user_id", "BIGINT"),
    ) + (("record", "JSON"), ("synced_at", "TIMESTAMPTZ"))),
}

FIELDS_SPEC = TableSpec("_fields", (
    ("field_key", "VARCHAR"), ("entity", "VARCHAR"), ("field_code", "VARCHAR"), ("field_name", "VARCHAR"),
    ("field_type", "VARCHAR"), ("is_custom_field", "BOOLEAN"), ("options", "JSON"), ("synced_at", "TIMESTAMPTZ"),
), key="field_key")


class FieldMap:
    """Custom-field keys (40-character hashes, different in every account) -> names, and enum /
    set option ids -> labels, from the ``*Fields`` endpoints."""

    def __init__(self, definitions: list[dict]) -> None:
        self.names: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.options: dict[str, dict[Any, str]] = {}
        seen: dict[str, str] = {}
        for d in definitions:
            code = d.get("field_code") if isinstance(d, dict) else None
            if not isinstance(code, str):
                continue
            name = d.get("field_name") if isinstance(d.get("field_name"), str) else code
            if name in seen and seen[name] != code:  # two fields with one name: keep both apart
                name = f"{name} ({code[:8]})"
            seen[name] = code
            self.names[code] = name
            self.types[code] = str(d.get("field_type") or "")
            opts = d.get("options") if isinstance(d.get("options"), list) else []
            self.options[code] = {o.get("id"): o.get("label") for o in opts if isinstance(o, dict)}

    def resolve(self, custom: Any, problem: Callable[[str], None]) -> dict[str, Any] | None:
        if custom is None:
            return None
        if not isinstance(custom, dict):
            problem("custom_fields is not an object")
            return None
        named: dict[str, Any] = {}
        for key, value in custom.items():
            name = self.names.get(key)
            if name is None:
                problem("custom field key not in field definitions")
                name = key
            options = self.options.get(key)
            if options and self.types.get(key) == "enum" and value is not None:
                value = options.get(value, value)
            elif options and self.types.get(key) == "set" and isinstance(value, list):
                value = [options.get(v, v) for v in value]
            named[name] = value
        return named


class _Reader:
    """Typed, forgiving access to one record's fields, collecting problems."""

    def __init__(self, record: dict, record_id: int, issues: list[tuple[str, str]]) -> None:
        self.r = record
        self.rid = str(record_id)
        self.issues = issues

    def problem(self, text: str) -> None:
        self.issues.append((self.rid, text))

    def text(self, key: str, source: Any = None) -> str | None:
        value = self.r.get(key) if source is None else source
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problem(f"{key} is not text")
            return None
        value, repaired = clean_text(value)
        if repaired:
            self.problem(f"{key} had invalid code points (replaced)")
        return value

    def int(self, key: str) -> int | None:
        value = self.r.get(key)
        if isinstance(value, dict):  # v1 style {"value": 5, "name": ...}
            value = value.get("value", value.get("id"))
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"{key} is not an integer")
            return None
        if not -(2**63) <= value < 2**63:
            self.problem(f"{key} is out of range")
            return None
        return value

    def number(self, key: str) -> float | None:
        value = self.r.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(f"{key} is not a number")
            return None
        return float(value)

    def boolean(self, key: str) -> bool | None:
        value = self.r.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.problem(f"{key} is not a boolean")
        return None

    def time(self, key: str) -> datetime | None:
        value = self.r.get(key)
        parsed = parse_time(value)
        if value is not None and parsed is None:
            self.problem(f"{key} is not a timestamp")
        return parsed

    def _list(self, key: str) -> list:
        """The field as a list: [] when absent or null, [] and a problem when not a list."""
        value = self.r.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"{key} is not a list")
            return []
        return value

    def contact_values(self, key: str) -> list[str]:
        """``emails``/``phones``: a list of {value, primary, label} (or of plain strings)."""
        out = []
        for item in self._list(key):
            raw = item.get("value") if isinstance(item, dict) else item
            if raw is None or raw == "":
                continue
            text = self.text(key, raw)
            if text is not None:
                out.append(text)
        return out

    def primary_value(self, key: str) -> str | None:
        value = self.r.get(key)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and item.get("primary") is True and isinstance(item.get("value"), str):
                    return clean_text(item["value"])[0]
        return None

    def int_list(self, key: str, item_key: str | None = None) -> list[int]:
        out = []
        for item in self._list(key):
            if item_key is not None and isinstance(item, dict):
                item = item.get(item_key)
            if isinstance(item, int) and not isinstance(item, bool):
                out.append(item)
            elif item is not None:
                self.problem(f"{key} has a non-integer item")
        return out

    def text_list(self, key: str, item_key: str) -> list[str]:
        out = []
        for item in self._list(key):
            raw = item.get(item_key) if isinstance(item, dict) else None
            if isinstance(raw, str) and raw:
                out.append(clean_text(raw)[0])
        return out

    def address(self, key: str) -> str | None:
        value = self.r.get(key)
        if isinstance(value, dict):
            value = value.get("value")  # v2 address objects: the full address is `value`
        return self.text(key, value) if value is not None else None


def extract(entity: str, record: dict, fields: FieldMap, now: datetime, issues: list[tuple[str, str]]) -> dict:
    """One raw row for ``record`` (which must have an integer ``id``)."""
    rd = _Reader(record, record["id"], issues)
    record_text, repaired = json_text(record)
    if repaired:
        rd.problem("record had invalid code points (replaced)")
    row: dict[str, Any] = {
        "id": record["id"],
        "update_time": rd.time("update_time"),
        "add_time": rd.time("add_time"),
        "record": record_text,
        "synced_at": now,
    }
    if row["update_time"] is None:
        rd.problem("update_time missing")
    if entity != "notes":
        # v2 activities carry no custom_fields (Activities reference): nothing to read there
        named = fields.resolve(record.get("custom_fields"), rd.problem) if entity != "activities" else None
        row["custom_fields_named"] = None if named is None else json_text(named)[0]
    if entity == "persons":
        row.update(
            name=rd.text("name"), first_name=rd.text("first_name"), last_name=rd.text("last_name"),
            org_id=rd.int("org_id"), owner_id=rd.int("owner_id"),
            emails=rd.contact_values("emails"), phones=rd.contact_values("phones"),
            primary_email=rd.primary_value("emails"), job_title=rd.text("job_title"),
            marketing_status=rd.text("marketing_status"), label_ids=rd.int_list("label_ids"),
        )
    elif entity == "organizations":
        row.update(name=rd.text("name"), owner_id=rd.int("owner_id"), address=rd.address("address"))
    elif entity == "deals":
        row.update(
            title=rd.text("title"), person_id=rd.int("person_id"), org_id=rd.int("org_id"),
            owner_id=rd.int("owner_id"), status=rd.text("status"), value=rd.number("value"),
            currency=rd.text("currency"),
        )
    elif entity == "activities":
        row.update(
            subject=rd.text("subject"), type=rd.text("type"), person_id=rd.int("person_id"),
            org_id=rd.int("org_id"), deal_id=rd.int("deal_id"), owner_id=rd.int("owner_id"),
            participant_person_ids=rd.int_list("participants", "person_id"),
            attendee_emails=rd.text_list("attendees", "email"),
            due_date=rd.text("due_date"), done=rd.boolean("done"),
        )
    elif entity == "notes":
        row.update(
            person_id=rd.int("person_id"), org_id=rd.int("org_id"), deal_id=rd.int("deal_id"),
            user_id=rd.int("user_id"),
        )
    return row


def field_rows(entity: str, definitions: list[dict], now: datetime) -> list[dict]:
    rows = []
    for d in definitions:
        if not isinstance(d, dict) or not isinstance(d.get("field_code"), str):
            continue
        rows.append({
            "field_key": f"{entity}:{d['field_code']}",
            "entity": entity,
            "field_code": d["field_code"],
            "field_name": clean_text(d["field_name"])[0] if isinstance(d.get("field_name"), str) else None,
            "field_type": str(d.get("field_type") or ""),
            "is_custom_field": bool(d.get("is_custom_field")),
            "options": json_text(d.get("options"))[0],
            "synced_at": now,
        })
    return rows
