"""Does the privacy notice still tell the truth about the warehouse?

Three promises, compared against what a published warehouse actually holds and the register
description (``contact_register/register.yaml``):

1. every system that holds data is a declared processor;
2. everything that lands (each ``raw_<system>`` column, each Pipedrive custom field by name)
   belongs to a declared data category (``landed_fields`` in the description);
3. every declared processor answers in a subject export: it has an exporter, or it is declared
   ``export: manual`` so that the export opens a task for the privacy officer.

The result is a short report an officer can read: which promise is at risk and why. It names
systems, tables and fields (field names are the account's settings, not personal data), never
values.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import duckdb

PROMISES = {
    "processors": "Every system that holds data is a declared processor",
    "categories": "Everything that lands belongs to a declared data category",
    "exports": "Every declared processor answers in a subject export",
}
REGISTER_FILE = "contact_register/register.yaml"
WHOLE_TABLE = "(the whole table)"


class MappingError(ValueError):
    """``landed_fields`` in the register description has the wrong shape."""


@dataclass
class Landed:
    """What one warehouse holds: per system, its data tables with their columns, and Pipedrive's
    field definitions as ``(entity, field name)`` of the custom fields."""

    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # system -> rows over its data tables
    custom_fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    risks: dict[str, list[str]] = field(default_factory=lambda: {p: [] for p in PROMISES})
    facts: dict[str, str] = field(default_factory=dict)  # promise -> what was checked, when it holds
    undeclared_fields: list[str] = field(default_factory=list)  # "system.table.column" / "pipedrive.persons:<name>"

    @property
    def passed(self) -> bool:
        return not any(self.risks.values())

    def at_risk(self) -> list[str]:
        return [p for p, items in self.risks.items() if items]

    def markdown(self) -> str:
        n = len(self.at_risk())
        head = ("**The notice holds: every promise checked is kept.**" if not n else
                f"**The notice is at risk: {n} of {len(PROMISES)} promises.**")
        lines = [head, ""]
        for i, (promise, title) in enumerate(PROMISES.items(), 1):
            if self.risks[promise]:
                lines.append(f"{i}. **{title}**: at risk.")
                lines += [f"   - {item}" for item in self.risks[promise]]
            else:
                lines.append(f"{i}. **{title}**: kept ({self.facts.get(promise, 'nothing to check')}).")
        return "\n".join(lines)


def read_landed(con: duckdb.DuckDBPyConnection) -> Landed:
    """The raw schemas of a warehouse: data tables (bookkeeping tables start with ``_``), their
    columns and row counts, and Pipedrive's custom field definitions."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    landed = Landed()
    cols = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name LIKE 'raw\\_%' ESCAPE '\\' AND table_name NOT LIKE '\\_%' ESCAPE '\\' "
        "ORDER BY schema_name, table_name, column_index", [catalog]).fetchall()
    for schema, table, column in cols:
        landed.tables.setdefault(schema.removeprefix("raw_"), {}).setdefault(table, []).append(column)
    for system, tables in landed.tables.items():
        landed.rows[system] = sum(con.execute(f'SELECT count(*) FROM raw_{system}."{t}"').fetchone()[0] for t in tables)
    has_fields = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'raw_pipedrive' "
        "AND table_name = '_fields'", [catalog]).fetchone()[0]
    if has_fields:
        landed.custom_fields = [(r[0], r[1]) for r in con.execute(
            "SELECT entity, coalesce(field_name, field_code) FROM raw_pipedrive._fields WHERE is_custom_field "
            "ORDER BY entity, field_name").fetchall()]
    return landed


def _names(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MappingError(f"{where} must be a list of names")
    return value


def column_categories(desc: dict) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], str], set[str]]:
    """From ``landed_fields``: (system, table) -> {column: category or 'keys'/'verbatim'},
    (system, table) -> reason for tables outside the notice, and the categories named."""
    spec = desc.get("landed_fields")
    if not isinstance(spec, dict) or not isinstance(spec.get("systems"), dict):
        raise MappingError("the register description lacks landed_fields.systems")
    shared = {c: "keys" for c in _names(spec.get("keys", []), "landed_fields.keys")}
    shared.update({c: "verbatim" for c in _names(spec.get("verbatim", []), "landed_fields.verbatim")})
    columns: dict[tuple[str, str], dict[str, str]] = {}
    outside: dict[tuple[str, str], str] = {}
    named: set[str] = set()
    for system, sys_spec in spec["systems"].items():
        tables = sys_spec.get("tables") if isinstance(sys_spec, dict) else None
        if not isinstance(tables, dict):
            raise MappingError(f"landed_fields.systems.{system} needs tables")
        for table, groups in tables.items():
            where = f"landed_fields.systems.{system}.tables.{table}"
            if not isinstance(groups, dict):
                raise MappingError(f"{where} must map categories to columns")
            if "outside_notice" in groups:
                outside[(system, table)] = str(groups["outside_notice"])
                continue
            mapped = dict(shared)
            for category, cols in groups.items():
                for col in _names(cols, f"{where}.{category}"):
                    mapped[col] = category
                if category != "keys":
                    named.add(category)
            columns[(system, table)] = mapped
    return columns, outside, named


def custom_field_categories(desc: dict) -> dict[tuple[str, str], str]:
    """(entity, Pipedrive custom field name) -> category."""
    spec = desc["landed_fields"]["systems"].get("pipedrive", {}).get("custom_fields") or {}
    out = {}
    for entity, fields in spec.items():
        if not isinstance(fields, dict):
            raise MappingError(f"landed_fields.systems.pipedrive.custom_fields.{entity} must map names to categories")
        out.update({(entity, str(name)): str(cat) for name, cat in fields.items()})
    return out


def _list(items: Iterable[str], limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_conformance(landed: Landed, desc: dict, exporters: Iterable[str]) -> Report:
    report = Report()
    processors = {p["system"]: p for p in desc["processors"]}
    categories = {c["id"] for c in desc["data_categories"]}
    holding = sorted(s for s, n in landed.rows.items() if n > 0)

    # 1. systems holding data are declared processors
    undeclared = [s for s in holding if s not in processors]
    if undeclared:
        report.risks["processors"].append(
            f"{_list(undeclared)} hold{'s' if len(undeclared) == 1 else ''} data in the warehouse but "
            f"{'is' if len(undeclared) == 1 else 'are'} not a processor in the notice: add "
            f"{'it' if len(undeclared) == 1 else 'them'} to `processors` in {REGISTER_FILE} (and to the notice).")
    report.facts["processors"] = (f"{len(holding)} of the {len(processors)} declared processors hold data in the "
                                  f"warehouse: {_list(holding) or 'none'}")

    # 2. everything that lands has a declared category
    columns, outside, named = column_categories(desc)
    unknown_categories = sorted(named - categories)
    if unknown_categories:
        report.risks["categories"].append(
            f"`landed_fields` uses categories the notice does not declare: {_list(unknown_categories)}.")
    unmapped_by_table: dict[str, list[str]] = defaultdict(list)
    checked = 0
    for system, tables in sorted(landed.tables.items()):
        for table, cols in sorted(tables.items()):
            if (system, table) in outside:
                continue
            mapping = columns.get((system, table))
            if mapping is None:
                unmapped_by_table[f"raw_{system}.{table}"] = [WHOLE_TABLE]
                continue
            checked += len(cols)
            unmapped_by_table[f"raw_{system}.{table}"] += [c for c in cols if c not in mapping]
    for table, cols in unmapped_by_table.items():
        if cols == [WHOLE_TABLE]:
            report.undeclared_fields.append(table)
        elif cols:
            report.undeclared_fields += [f"{table}.{c}" for c in cols]
        if cols:
            report.risks["categories"].append(
                f"{table}: {_list(cols)} land{'s' if len(cols) == 1 else ''} without a data category: map "
                f"{'it' if len(cols) == 1 else 'them'} under `landed_fields` in {REGISTER_FILE}, or stop syncing "
                f"{'it' if len(cols) == 1 else 'them'}.")
    custom = custom_field_categories(desc)
    new_custom: dict[str, list[str]] = defaultdict(list)
    for entity, name in landed.custom_fields:
        if (entity, name) not in custom:
            new_custom[entity].append(name)
        elif custom[(entity, name)] not in categories:
            report.risks["categories"].append(
                f"Pipedrive {entity} custom field \"{name}\" is mapped to `{custom[(entity, name)]}`, "
                "which the notice does not declare.")
    for entity, names in sorted(new_custom.items()):
        report.undeclared_fields += [f"pipedrive.{entity}:{n}" for n in names]
        quoted = _list(f'"{n}"' for n in names)
        report.risks["categories"].append(
            f"Pipedrive {entity} custom field{'s' if len(names) > 1 else ''} without a data category: "
            f"{quoted}. Someone added {'it' if len(names) == 1 else 'them'} in Pipedrive; "
            f"decide which category {'it belongs' if len(names) == 1 else 'they belong'} to under "
            f"`landed_fields.systems.pipedrive.custom_fields.{entity}` in {REGISTER_FILE}, or update the notice.")
    report.facts["categories"] = (f"{checked} columns in {sum(len(t) for t in landed.tables.values())} raw tables "
                                  f"and {len(landed.custom_fields)} Pipedrive custom fields mapped")

    # 3. declared processors answer in exports
    exporters = set(exporters)
    silent = [s for s, p in processors.items() if p.get("export") == "api" and s not in exporters]
    if silent:
        report.risks["exports"].append(
            f"{_list(silent)} {'is' if len(silent) == 1 else 'are'} declared `export: api` but no exporter reads "
            f"{'it' if len(silent) == 1 else 'them'}: an access request's package would miss "
            f"{'its' if len(silent) == 1 else 'their'} data. Add the exporter, or declare `export: manual` so that "
            "the export opens a task.")
    manual = sorted(s for s, p in processors.items() if p.get("export") == "manual")
    report.facts["exports"] = (f"{len(processors) - len(manual)} processors exported automatically, "
                               f"{len(manual)} by a manual task" + (f": {_list(manual)}" if manual else ""))
    return report
