"""What every write-back op (erasure, marketing ban, rectification, restriction) needs from
Dagster: who acts, the register, the systems' clients with write scopes, and a run-page table."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

from dagster import MetadataValue, OpExecutionContext

from contact_register.requests.cases.casebook import Register
from assets.system_resources import client_factories
from contact_register.requests.writeback.base import Clients


@contextmanager
def writeback_session(context: OpExecutionContext, systems=None) -> Iterator[tuple[str, Register, Clients]]:
    """``(actor, register, clients)`` for one op, closed when it ends."""
    register = context.resources.register.open()
    clients = Clients(client_factories(context.resources, systems, write=True))
    try:
        yield f"dagster:{context.run.run_id}", register, clients
    finally:
        clients.close()
        register.close()


def systems_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> MetadataValue:
    """A markdown table for the run page; cells are ids, states, counts and notes (no personal data)."""
    def cell(value: object) -> str:
        return "" if value is None else str(value).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))
