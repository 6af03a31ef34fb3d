"""Contract tests of Matomo, Trustmary and Docue (issue 16).

``tests/contracts/small/<system>.json`` lists every JSON path of the vendor's answers that we
rely on, each with where the vendor publishes it (Matomo's own source, Trustmary's help-centre
articles and repositories, Docue's API docs) or marked GUESS where the vendor publishes nothing.
Each test runs the connector's real flows (find, export, erase, ban) against the imitation over
HTTP, with ``HttpClient.request_json`` wrapped so that

- every path an imitation **sends** is recorded (walking the decoded answer), and
- every field the connector **reads** is recorded (the answer's dicts note ``[]``/``get``/``in``),

and both sets must lie inside the contract: an imitation that grows a field, or a connector that
starts reading one, fails here until the contract names its source.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.http import HttpClient
from contact_register.requests.erasure.registry import ERASERS
from contact_register.requests.marketing_ban.registry import BANNERS
from tests.test_small_processors import clients, humans, subject_of, work_address_contacts  # noqa: F401 - fixture
from tests.contracts.reads import ReadNoting

CONTRACTS = Path(__file__).parent / "contracts" / "small"


def contract(system: str) -> dict[str, str]:
    fields = json.loads((CONTRACTS / f"{system}.json").read_text(encoding="utf-8"))["fields"]
    assert all(isinstance(src, str) and src.strip() for src in fields.values()), "every field names its source"
    return fields


def _key(key: str) -> str:
    return "field_<NAME>" if key.startswith("field_") else key  # Trustmary's custom fields


class Seen:
    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.read: set[str] = set()


def _name(route: str, path: str) -> str:
    # Error and success envelopes look alike on every route.
    return f"* {path}" if path in (".result", ".message") else f"{route} {path}"


class ReadDict(ReadNoting):
    """A decoded answer object that records which of its keys the connector reads."""

    def __init__(self, data: dict, route: str, path: str, seen: Seen) -> None:
        super().__init__({k: _wrap(v, route, f"{path}.{_key(k)}", seen) for k, v in data.items()})
        self._route, self._path, self._seen = route, path, seen

    def note(self, key: Any) -> None:
        self._seen.read.add(_name(self._route, f"{self._path}.{_key(str(key))}"))


def _wrap(value: Any, route: str, path: str, seen: Seen) -> Any:
    if isinstance(value, dict):
        for k in value:
            seen.sent.add(_name(route, f"{path}.{_key(k)}"))
        return ReadDict(value, route, path, seen)
    if isinstance(value, list):
        seen.sent.add(_name(route, f"{path}[]" if path else "[]"))
        return [_wrap(v, route, f"{path}[]", seen) for v in value]
    return value


def _route(method: str, path: str, params: dict | None) -> str:
    if path.strip("/") == "index.php":
        return str((params or {}).get("method"))  # Matomo: one endpoint, the API method names the answer
    path = re.sub(r"survey/[^/]+/", "survey/{id}/", path.strip("/"))
    return f"{method} {re.sub(r'documents/[0-9]+', 'documents/{id}', path)}"


@pytest.fixture
def seen(monkeypatch) -> Seen:
    record = Seen()
    original = HttpClient.request_json

    def request_json(self, method, path, *, params=None, **kw):
        body = original(self, method, path, params=params, **kw)
        return _wrap(body, _route(method, path, params), "", record)

    monkeypatch.setattr(HttpClient, "request_json", request_json)
    return record


def check(system: str, seen: Seen) -> None:
    fields = contract(system)
    assert seen.sent and seen.read, "the flows exchanged answers"
    assert sorted(seen.sent - set(fields)) == [], f"{system}: the imitation sends fields outside the contract"
    assert sorted(seen.read - set(fields)) == [], f"{system}: the connector reads fields outside the contract"


def run_matomo(small_sandbox, clients) -> None:  # noqa: F811 - the fixture's name
    world = small_sandbox.world
    tpid = min(v.true_person_id for v in world.derive("matomo").visits if v.true_person_id and v.user_id)
    subject = subject_of(humans(world)[tpid])
    client = clients.client("matomo")
    client.export_visits(client.find_visits(subject.emails).visits)
    eraser = ERASERS["matomo"]()
    eraser.execute(clients, subject, eraser.plan(clients, subject, date.today()))
    eraser.verify(clients, subject)


def run_trustmary(small_sandbox, clients) -> None:  # noqa: F811
    world = small_sandbox.world
    answered = {r.contact_id for r in world.derive("trustmary").responses}
    contact = min((c for c in work_address_contacts(world) if c.id in answered and c.lists), key=lambda c: c.id)
    subject = subject_of(humans(world)[contact.true_person_id])
    clients.client("trustmary").check()
    BANNERS["trustmary"].ban(clients, subject)
    BANNERS["trustmary"].verify(clients, subject)
    eraser = ERASERS["trustmary"]()
    eraser.execute(clients, subject, eraser.plan(clients, subject, date.today()))
    eraser.verify(clients, subject)


def run_docue(small_sandbox, clients) -> None:  # noqa: F811
    world = small_sandbox.world
    signer = min((s for s in world.derive("docue").signatures if s.true_person_id and s.email), key=lambda s: s.id)
    subject = subject_of(humans(world)[signer.true_person_id])
    clients.client("docue").export(subject.emails)
    ERASERS["docue"]().plan(clients, subject, date.today())


def test_matomo_contract(small_sandbox, clients, seen):  # noqa: F811
    run_matomo(small_sandbox, clients)
    check("matomo", seen)


@pytest.mark.parametrize("shape", ["wrapped", "bare"])
def test_trustmary_contract(small_sandbox, clients, seen, shape):  # noqa: F811
    small_sandbox.trustmary.contacts_shape = shape
    run_trustmary(small_sandbox, clients)
    check("trustmary", seen)


def test_docue_contract(small_sandbox, clients, seen):  # noqa: F811
    run_docue(small_sandbox, clients)
    check("docue", seen)


def test_contract_check_catches_drift_on_either_side(small_sandbox, clients, seen, monkeypatch):  # noqa: F811
    """The check is not vacuous: an imitation field outside the contract fails it, and so does
    a connector reading a field outside it."""
    mt = small_sandbox.matomo
    original = type(mt)._visit_summary
    monkeypatch.setattr(type(mt), "_visit_summary", lambda self, v: {**original(self, v), "visitorEmail": "x"})
    run_matomo(small_sandbox, clients)
    with pytest.raises(AssertionError, match="the imitation sends"):
        check("matomo", seen)

    fresh = Seen()
    fresh.sent = {"PrivacyManager.findDataSubjects [].idVisit"}
    fresh.read = {"PrivacyManager.findDataSubjects [].idVisit", "PrivacyManager.findDataSubjects [].visitDuration"}
    with pytest.raises(AssertionError, match="the connector reads"):
        check("matomo", fresh)
