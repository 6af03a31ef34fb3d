"""Every right finds its per-system handlers the same way: one explicit, typed table per right in
its ``registry.py``, filled from imports only (no registration calls in the per-system modules,
no modules imported by name)."""

from __future__ import annotations

import ast
from pathlib import Path

from contact_register.requests.erasure.registry import ERASERS, make_erasers
from contact_register.requests.export.registry import EXPORTERS
from contact_register.requests.marketing_ban.registry import BANNERS
from contact_register.requests.rectification.registry import RECTIFIERS

REQUESTS = Path(__file__).resolve().parents[1] / "contact_register" / "requests"


def test_each_table_names_the_systems_of_its_right():
    # The big four first in a fixed order (the erasure run page lists them so), then the others.
    assert list(ERASERS) == ["pipedrive", "google", "netvisor", "request_tracker", "docue", "matomo", "trustmary"]
    assert list(EXPORTERS) == ["pipedrive", "google", "netvisor", "request_tracker", "trustmary", "matomo", "docue"]
    assert set(BANNERS) == {"pipedrive", "google", "trustmary", "netvisor", "request_tracker", "matomo", "docue",
                            "dealfront", "secapp"}
    assert list(RECTIFIERS) == ["pipedrive", "netvisor", "request_tracker", "google", "trustmary", "docue",
                                "dealfront", "secapp", "matomo"]


def test_each_handler_answers_for_the_system_it_is_filed_under():
    for table in (make_erasers(), EXPORTERS, BANNERS, RECTIFIERS):
        assert all(handler.system == system for system, handler in table.items())
    assert all(callable(getattr(h, m)) for h in make_erasers().values() for m in ("plan", "execute", "verify"))
    assert all(callable(h.ban) and callable(h.verify) for h in BANNERS.values())
    assert all(hasattr(h, "answer") or (callable(h.plan) and callable(h.apply)) for h in RECTIFIERS.values())


def test_no_registration_at_import_and_no_import_by_name():
    offenders = []
    for path in sorted(REQUESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "importlib" in names:
                    offenders.append(f"{path.name}: imports importlib")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("register_"):
                offenders.append(f"{path.name}:{node.lineno}: {node.func.id}()")
    assert offenders == []
