"""Contract test (issue 16): every list/get call the Pipedrive connector makes, answered by the
imitation over HTTP, held against Pipedrive's published response schemas
(tests/contracts/pipedrive/schemas.py, written from Pipedrive's reference with a source per
field). Two directions:

- every name the imitation sends must be in the contract, with the documented type (null is
  accepted: Pipedrive sends it for empty values);
- every name the connector reads (``connectors/pipedrive.py``, ``assets/pipedrive/*`` and the
  Pipedrive eraser) must be in the contract. Reads are observed, not declared: each answer is
  handed to the code as dicts that record which keys are looked up (``[]``, ``get``, ``in``).

No Pipedrive package on PyPI carries Pipedrive's OpenAPI files and ``jsonschema`` is not
installed in the project, hence the hand-written schemas and the small checker beside them.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlparse

import pytest

from contact_register.sync.pipedrive.sync import sync_pipedrive
from contact_register.sync.raw_store import open_raw_store
from connectors.http import HttpClient
from contact_register.requests.erasure.pipedrive import PipedriveEraser
from contact_register.requests.erasure.policy import system_policy
from contact_register.requests.cases import validate_identifiers
from contact_register.requests.writeback.base import Clients, WritebackSubject
from tests.conftest import make_client
from tests.contracts.pipedrive.schemas import CONTRACT, Any_, Obj, check, node
from tests.contracts.reads import ReadNoting

ROUTES = [
    (re.compile(r"api/v2/(persons|organizations|deals|activities)"), "GET /api/v2/{}"),
    (re.compile(r"api/v2/(persons|organizations|deals|activities)/\d+"), "GET /api/v2/{}/{{id}}"),
    (re.compile(r"api/v2/persons/search"), "GET /api/v2/persons/search"),
    (re.compile(r"api/v2/(personFields|organizationFields|dealFields|activityFields)"), "GET /api/v2/{{fields}}"),
    (re.compile(r"api/v1/notes"), "GET /api/v1/notes"),
    (re.compile(r"api/v1/notes/\d+"), "GET /api/v1/notes/{{id}}"),
    (re.compile(r"api/v1/persons/\d+/mailMessages"), "GET /api/v1/persons/{{id}}/mailMessages"),
    (re.compile(r"api/v1/persons/\d+/flow"), "GET /api/v1/persons/{{id}}/flow"),
]


def route_of(method: str, path: str) -> str:
    target = urlparse(path).path.lstrip("/")
    for pattern, template in ROUTES:
        m = pattern.fullmatch(target)
        if m and method.upper() == "GET":
            return template.format(*m.groups())
    raise AssertionError(f"the connector called {method} {target}, which has no contract here")


class Traced(ReadNoting):
    """A JSON object that notes every key the code looks up, as (route, path, key)."""

    def __init__(self, *args, reads: set | None = None, route: str = "", path: tuple = (), **kw):
        super().__init__(*args, **kw)
        self._reads, self._route, self._path = reads, route, path

    def note(self, key):
        if self._reads is not None:
            self._reads.add((self._route, self._path, key))


def traced(value, reads: set, route: str, path: tuple = ()):
    if isinstance(value, dict):
        return Traced({k: traced(v, reads, route, path + (k,)) for k, v in value.items()},
                      reads=reads, route=route, path=path)
    if isinstance(value, list):
        return [traced(v, reads, route, path + ("[]",)) for v in value]
    return value


class Recorder:
    """Wraps HttpClient.request_json: keeps every GET answer and traces the connector's reads."""

    def __init__(self, monkeypatch):
        self.answers: list[tuple[str, object]] = []
        self.reads: set[tuple[str, tuple, str]] = set()
        original = HttpClient.request_json

        def request_json(client, method, path, **kw):
            body = original(client, method, path, **kw)
            if client.system != "pipedrive" or method.upper() != "GET":
                return body
            route = route_of(method, path)
            self.answers.append((route, body))
            return traced(body, self.reads, route)

        monkeypatch.setattr(HttpClient, "request_json", request_json)

    def problems(self) -> list[str]:
        out = [p for route, body in self.answers for p in (f"{route} {x}" for x in check(body, CONTRACT[route]))]
        for route, path, key in sorted(self.reads, key=repr):
            parent = node(CONTRACT[route], list(path))
            if isinstance(parent, Any_) or (isinstance(parent, Obj) and (parent.open or key in parent.props)):
                continue
            out.append(f"{route}: the connector reads {'.'.join(path + (key,))}, which is not in the contract")
        return out


def exercise(sandbox, tmp_path) -> None:
    """Every list/get call the connector makes, with answers that are not empty: a full sync
    (lists, fields, notes), one record of each kind, a person search, mail, flow, the
    id reconciliation walk and an erasure plan (linked deals, activities with attendees, notes)."""
    client = make_client(sandbox, page_limit=100)
    pd = sandbox.pipedrive
    person = client.create("persons", {"name": "Sopimus Testaaja", "emails": [{"value": "sopimus.testaaja@esimerkki.fi"}]})
    pid = person["id"]
    client.update("persons", pid, {"job_title": "Ostaja"})  # a personChange for the flow
    client.create("deals", {"title": "Sopimuskauppa", "person_id": pid})
    client.create("activities", {"subject": "Palaveri", "type": "meeting", "person_id": pid, "attendees": [
        {"email": "sopimus.testaaja@esimerkki.fi", "name": "Sopimus Testaaja", "person_id": pid}]})
    note = client.create("notes", {"content": "Sopimuksesta", "person_id": pid})
    with open_raw_store(tmp_path / "raw", "pipedrive") as store:
        sync_pipedrive(client, store)
    for entity in ("persons", "organizations", "deals", "activities"):
        client.get(entity, min(pd.live_ids(entity)))
    client.get("notes", note["id"])
    assert client.search_persons("sopimus.testaaja@esimerkki.fi", exact_match=True, fields="email")
    with_mail = next(i for i in sorted(pd.live_ids("persons")) if pd.mail_messages(i))
    assert client.mail_messages(with_mail) and client.person_flow(pid)
    for entity in ("persons", "deals"):
        assert list(client.iter_ids(entity))
    client.close()
    ids = validate_identifiers(["sopimus.testaaja@esimerkki.fi"], [], "Sopimus Testaaja")
    subject = WritebackSubject("CONTRACT", ids, emails=["sopimus.testaaja@esimerkki.fi"], names=["Sopimus Testaaja"])
    clients = Clients({"pipedrive": lambda: make_client(sandbox)})
    assert PipedriveEraser(system_policy("pipedrive")).plan(clients, subject, date.today())
    clients.close()


def test_imitation_answers_and_connector_reads_keep_to_pipedrives_contract(sandbox, tmp_path, monkeypatch):
    rec = Recorder(monkeypatch)
    exercise(sandbox, tmp_path)
    assert {route for route, _ in rec.answers} == set(CONTRACT), "every contracted call was made"
    assert rec.problems() == []


def test_contract_catches_a_field_the_imitation_invents(sandbox, tmp_path, monkeypatch):
    """The test above can fail: an answer with a name Pipedrive does not document is reported."""
    original = sandbox.pipedrive._render

    def render(entity, rec, *args, **kw):
        out = original(entity, rec, *args, **kw)
        return {**out, "primary_email": "x@esimerkki.fi"} if entity == "persons" else out

    monkeypatch.setattr(sandbox.pipedrive, "_render", render)
    rec = Recorder(monkeypatch)
    exercise(sandbox, tmp_path)
    assert any("GET /api/v2/persons $.data[0].primary_email: not in the contract" in p for p in rec.problems())


def test_contract_catches_a_field_the_connector_reads(sandbox, tmp_path, monkeypatch):
    """... and so is a read of an undocumented name (v1's ``email`` on a v2 person)."""
    import contact_register.sync.pipedrive.extract as extract

    original = extract.extract

    def reading_v1_email(entity, record, *args):
        if entity == "persons":
            record.get("email")
        return original(entity, record, *args)

    monkeypatch.setattr(extract, "extract", reading_v1_email)
    monkeypatch.setattr("contact_register.sync.pipedrive.sync.extract", reading_v1_email)
    rec = Recorder(monkeypatch)
    exercise(sandbox, tmp_path)
    assert "GET /api/v2/persons: the connector reads data.[].email, which is not in the contract" in rec.problems()


@pytest.mark.parametrize("value, schema_key, expected", [
    ({"id": "7"}, "id", "str where integer is documented"),
    ({"is_deleted": 0}, "is_deleted", "int where boolean is documented"),
    ({"value": True}, "value", "bool where number is documented"),
])
def test_checker_judges_types_and_lets_null_pass(value, schema_key, expected):
    from tests.contracts.pipedrive.schemas import DEAL

    assert any(expected in p for p in check(value, DEAL))
    assert check({schema_key: None}, DEAL) == []
