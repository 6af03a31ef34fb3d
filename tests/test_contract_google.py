"""Contract test: the Google imitation against Google's own discovery documents.

The discovery documents are the ones shipped inside the installed google-api-python-client
(``googleapiclient/discovery_cache/documents/*.json``, found through the package at test time,
never copied into this repository): the vendor's published description of every method's
parameters and response schema. The connector itself builds its requests from the same
documents, so the requests are checked by the library; this test checks the answers.

Every answer the connector receives while it syncs (full and incremental), finds, exports,
erases and bans is caught where google-api-python-client turns the HTTP body into a dict
(``HttpRequest.postproc``, which batch parts go through too) and
- validated against the method's response schema: every field must be declared (unknown fields
  are rejected), of the declared type, ``int64`` as a decimal string, ``date-time`` and
  ``google-datetime`` as RFC 3339, ``byte`` as base64;
- held to the request's ``fields`` mask (Google's partial response: only what was asked for);
- checked for the fields Google sends on every resource of a kind (``ALWAYS``; the sync reads
  every stored message, event, file and contact, so every stored resource is checked);
- handed to the connector wrapped so that every key it reads is recorded: a key the schema does
  not declare fails the test (the connector relying on a field Google never sends).
"""

from __future__ import annotations

import base64
import importlib.resources
import json
import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from googleapiclient import http as gapi_http

from contact_register.sync.google.sync import sync_google
from contact_register.sync.raw_store import open_raw_store
from connectors.google_workspace import SCOPES_WRITE
from contact_register.requests.erasure.google import erase
from contact_register.requests.export.google_find import find
from contact_register.requests.marketing_ban.google import ban_address
from tests.test_google_sync import make_google_client
from tests.contracts.reads import ReadNoting

DOCUMENTS = ("admin.directory_v1.json", "gmail.v1.json", "calendar.v3.json", "drive.v3.json", "people.v1.json")

# Fields Google sends on every instance of a schema, with where that is published. Only checked
# when the request had no ``fields`` mask (a mask may leave them out).
ALWAYS = {
    # Calendar events resource: start and end are required properties (the discovery document
    # annotates both as required by events.insert/import), kind/etag/id/status/updated are
    # read-only properties of every event.
    # https://developers.google.com/workspace/calendar/api/v3/reference/events
    "Event": {"kind", "etag", "id", "status", "updated", "start", "end"},
    # "Deleted events ... only the id field is guaranteed" (events.list, showDeleted/syncToken).
    "Event(cancelled)": {"id", "status"},
    "Events": {"kind", "etag"},
    # People API: every Person carries resourceName and etag ("The HTTP entity tag of the
    # resource. Used for web cache validation"), connections and other contacts alike.
    "Person": {"resourceName", "etag"},
    "ContactGroup": {"resourceName", "etag", "name", "groupType"},
    # Directory: every resource and list envelope has kind and etag.
    "User": {"kind", "id", "etag", "primaryEmail", "name", "isAdmin", "suspended", "creationTime"},
    "Users": {"kind", "etag"},
    "Group": {"kind", "id", "etag", "email", "name", "directMembersCount"},
    "Groups": {"kind", "etag"},
    "Member": {"kind", "id", "etag", "email", "role", "type", "status"},
    "Members": {"kind", "etag"},
    # Gmail users.getProfile; users.messages (format minimal and up).
    "Profile": {"emailAddress", "messagesTotal", "threadsTotal", "historyId"},
    # A message reference (messages.list, history) is id and threadId; users.messages.get adds
    # the rest (METHOD_ALWAYS).
    "Message": {"id", "threadId"},
    "ListMessagesResponse": {"resultSizeEstimate"},
    "ListHistoryResponse": {"historyId"},
    "StartPageToken": {"kind", "startPageToken"},
}

# Fields of a method's whole answer (not of every Message: list answers carry references).
METHOD_ALWAYS = {
    # users.messages.get, format minimal and up: "id, threadId, labelIds, historyId, internalDate,
    # sizeEstimate" are populated (Gmail reference, users.messages resource).
    "gmail.users.messages.get": {"id", "threadId", "labelIds", "historyId", "internalDate", "sizeEstimate"},
}

# People API methods whose answer holds only the person fields the request's mask names (plus
# resourceName and etag), and all of them: personFields for connections, readMask for other contacts.
# https://developers.google.com/people/api/rest/v1/people.connections/list
PERSON_MASKS = {"people.people.connections.list": ("personFields", "connections"),
                "people.otherContacts.list": ("readMask", "otherContacts")}

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
INT64 = re.compile(r"^-?\d+$")
BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def load_documents() -> dict[str, dict]:
    """Discovery documents of the installed client, by file name, located through the package."""
    folder = importlib.resources.files("googleapiclient") / "discovery_cache" / "documents"
    return {name: json.loads((folder / name).read_text(encoding="utf-8")) for name in DOCUMENTS}


def method_index(docs: dict[str, dict]) -> dict[str, tuple[dict, dict]]:
    """methodId ("gmail.users.messages.get") -> (its document, its method description)."""
    out: dict[str, tuple[dict, dict]] = {}

    def walk(doc: dict, resources: dict) -> None:
        for res in resources.values():
            for method in (res.get("methods") or {}).values():
                out[method["id"]] = (doc, method)
            walk(doc, res.get("resources") or {})

    for doc in docs.values():
        walk(doc, doc.get("resources") or {})
    return out


def resolve(doc: dict, schema: dict) -> dict:
    return doc["schemas"][schema["$ref"]] if "$ref" in schema else schema


def validate(value, schema: dict, doc: dict, path: str, errors: list[str]) -> None:
    """Check ``value`` against a discovery schema (types, formats, enums, no undeclared fields)."""
    schema = resolve(doc, schema)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            errors.append(f"{path}: {type(value).__name__}, expected object")
            return
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                validate(item, props[key], doc, f"{path}.{key}", errors)
            elif extra is not None:
                validate(item, extra, doc, f"{path}.{key}", errors)
            else:
                errors.append(f"{path}.{key}: not in the discovery schema {schema.get('id', '')}")
        name = schema.get("id")
        if name == "Event" and value.get("status") == "cancelled":
            name = "Event(cancelled)"
        if name in ALWAYS and not getattr(errors, "masked", False):
            for key in sorted(ALWAYS[name] - set(value)):
                errors.append(f"{path}: {name} lacks {key}, which Google sends on every {name}")
    elif kind == "array":
        if not isinstance(value, list):
            errors.append(f"{path}: {type(value).__name__}, expected array")
            return
        for i, item in enumerate(value):
            validate(item, schema["items"], doc, f"{path}[{i}]", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: {type(value).__name__} {value!r}, expected string")
            return
        fmt = schema.get("format")
        if fmt in ("int64", "uint64") and not INT64.match(value):
            errors.append(f"{path}: {value!r} is not an {fmt} string")
        elif fmt in ("date-time", "google-datetime"):
            if not RFC3339.match(value):
                errors.append(f"{path}: {value!r} is not RFC 3339")
            else:
                datetime.fromisoformat(value.replace("Z", "+00:00"))  # a real date and time
        elif fmt == "date" and not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            errors.append(f"{path}: {value!r} is not a date")
        elif fmt == "byte":
            if not BASE64.match(value):
                errors.append(f"{path}: not base64")
            else:
                base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if schema.get("enum") and value not in schema["enum"]:
            errors.append(f"{path}: {value!r} not one of {schema['enum']}")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: {value!r}, expected integer")
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: {value!r}, expected number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: {value!r}, expected boolean")
    elif kind != "any":
        errors.append(f"{path}: schema type {kind!r} unknown to this test")


def parse_mask(mask: str) -> dict:
    """Google's partial-response syntax (``a,b/c,d(e,f)``) as a tree: name -> subtree (empty: all).
    https://developers.google.com/workspace/drive/api/guides/fields-parameter"""
    pos = 0

    def items() -> dict:
        nonlocal pos
        tree: dict = {}
        while pos < len(mask):
            m = re.compile(r"\s*([A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*)\s*").match(mask, pos)
            assert m, f"bad mask {mask!r} at {pos}"
            pos = m.end()
            sub: dict = {}
            if pos < len(mask) and mask[pos] == "(":
                pos += 1
                sub = items()
                assert mask[pos] == ")", mask
                pos += 1
            node = tree
            parts = m.group(1).split("/")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = sub
            while pos < len(mask) and mask[pos] == " ":
                pos += 1
            if pos < len(mask) and mask[pos] == ",":
                pos += 1
                continue
            break
        return tree

    return items()


def outside_mask(value, tree: dict, path: str) -> list[str]:
    if not tree or "*" in tree:
        return []
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in outside_mask(item, tree, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return []
    out = []
    for key, item in value.items():
        if key not in tree:
            out.append(f"{path}.{key}: sent though the fields mask left it out")
        else:
            out += outside_mask(item, tree[key], f"{path}.{key}")
    return out


def person_mask_errors(method_id: str, uri: str, result: dict) -> list[str]:
    """Persons hold only the masked fields; ``metadata``, when asked for, is there with its sources."""
    param, key = PERSON_MASKS[method_id]
    mask = {f.strip() for f in (parse_qs(urlsplit(uri).query).get(param) or [""])[0].split(",") if f.strip()}
    out = []
    for i, person in enumerate(result.get(key) or []):
        for extra in sorted(set(person) - mask - {"resourceName", "etag"}):
            out.append(f"{method_id}.{key}[{i}].{extra}: not asked for in {param}")
        if "metadata" in mask and not (person.get("metadata") or {}).get("sources"):
            out.append(f"{method_id}.{key}[{i}]: {param} asks for metadata, the answer has no metadata.sources")
    return out


class Errors(list):
    masked = False


class Tracked(ReadNoting):
    """An answer as the connector sees it: every key read is checked against the schema."""

    def note(self, key) -> None:
        schema = self.__dict__.get("_schema")
        if schema is None:
            return
        if key not in (schema.get("properties") or {}) and schema.get("additionalProperties") is None:
            self.__dict__["_recorder"].bad_reads.add(f"{self.__dict__['_method']}: reads {schema.get('id')}.{key}")
        self.__dict__["_recorder"].reads.add(f"{schema.get('id')}.{key}")


class Recorder:
    def __init__(self) -> None:
        self.docs = load_documents()
        self.methods = method_index(self.docs)
        self.errors: list[str] = []
        self.bad_reads: set[str] = set()
        self.reads: set[str] = set()
        self.answers: dict[str, int] = {}

    def wrap(self, value, schema: dict | None, doc: dict, method: str):
        schema = resolve(doc, schema) if schema else None
        if isinstance(value, dict):
            props = (schema or {}).get("properties") or {}
            extra = (schema or {}).get("additionalProperties")
            out = Tracked({k: self.wrap(v, props.get(k) or extra, doc, method) for k, v in value.items()})
            if schema is not None and schema.get("type") == "object":
                out.__dict__.update(_schema=schema, _recorder=self, _method=method)
            return out
        if isinstance(value, list):
            items = (schema or {}).get("items")
            return [self.wrap(v, items, doc, method) for v in value]
        return value

    def receive(self, method_id: str, uri: str, result):
        if not isinstance(result, dict):
            return result  # media (bytes) and empty answers
        assert method_id in self.methods, f"{method_id}: not a method of the discovery documents"
        doc, method = self.methods[method_id]
        self.answers[method_id] = self.answers.get(method_id, 0) + 1
        schema = method.get("response") or {"type": "object", "properties": {}}
        errors = Errors()
        fields = (parse_qs(urlsplit(uri).query).get("fields") or [""])[0]
        errors.masked = bool(fields)
        validate(result, schema, doc, method_id, errors)
        if fields:
            errors += outside_mask(result, parse_mask(fields), method_id)
        for key in sorted(METHOD_ALWAYS.get(method_id, set()) - set(result)):
            errors.append(f"{method_id}: lacks {key}")
        if method_id in PERSON_MASKS:
            errors += person_mask_errors(method_id, uri, result)
        self.errors += errors
        return self.wrap(result, schema, doc, method_id)


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    original = gapi_http.HttpRequest.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        inner = self.postproc

        def postproc(resp, content):
            return rec.receive(self.methodId, self.uri, inner(resp, content))

        self.postproc = postproc

    monkeypatch.setattr(gapi_http.HttpRequest, "__init__", init)
    return rec


def drive_everything(g, raw_dir, sandbox) -> None:
    """Full sync, changes of every kind, incremental sync, then find/export/erase/ban."""
    client = make_google_client(sandbox)
    with open_raw_store(raw_dir, "google") as store:
        sync_google(client, store)
    alice, bob = g.user_emails()[0], g.user_emails()[1]
    who = "kontrakti.testi@esimerkki.fi"
    g.add_message(alice, [("From", f"Testi <{who}>"), ("To", alice), ("Subject", "Hei"),
                          ("Date", "Tue, 3 Nov 2026 10:00:00 +0200")])
    mid = next(iter(g.mail[bob]["messages"]))
    g.relabel(bob, mid, add=("STARRED",))
    g.delete_message(bob, next(m for m in g.mail[bob]["messages"] if m != mid))
    g.put_event(alice, {"id": "evcontract", "summary": "Palaveri", "organizer": {"email": alice},
                        "start": {"dateTime": "2026-11-03T10:00:00+02:00"},
                        "end": {"dateTime": "2026-11-03T11:00:00+02:00"},
                        "attendees": [{"email": alice}, {"email": who}]})
    g.cancel_event(bob, next(iter(g.cal[bob]["events"])))
    g.put_file(alice, {"id": "filecontract", "name": "x.docx", "mimeType": "application/pdf", "content": "sisältö",
                       "permissions": [{"id": "o1", "type": "user", "role": "owner", "emailAddress": alice},
                                       {"id": "r1", "type": "user", "role": "reader", "emailAddress": who}]})
    g.remove_file(next(f["id"] for f in g.live_files(bob)))
    g.put_contact(alice, {"resourceName": "people/c999", "names": [{"displayName": "Testi Kontrakti"}],
                          "emailAddresses": [{"value": who}]})
    g.delete_contact(bob, next(iter(g.people[bob]["connections"])))
    g.dir_groups[f"uutiskirje@{g.domain}"].add(who)
    with open_raw_store(raw_dir, "google") as store:
        sync_google(client, store)
    client.close()
    writer = make_google_client(sandbox, scopes=SCOPES_WRITE)
    lists = (f"uutiskirje@{g.domain}",)
    # What the subject export reads live: the person's mails whole (raw), as exporters.py does.
    found = find(writer, who, lists)
    for user in {m["user"] for m in found.gmail}:
        writer.gmail_get_many(user, [m["message_id"] for m in found.gmail if m["user"] == user], fmt="raw")
    ban_address(writer, who, mailing_lists=lists)
    erase(writer, who, permanent=False, mailing_lists=lists)
    erase(writer, who, permanent=True, mailing_lists=lists)
    writer.close()


def test_every_answer_the_connector_reads_conforms_to_the_discovery_documents(google_sandbox, recorder, tmp_path):
    g = google_sandbox.google
    drive_everything(g, tmp_path, google_sandbox)
    # The walk reached every method the connector uses (a method never called proves nothing).
    used = {"directory.users.list", "directory.groups.list", "directory.members.list", "gmail.users.getProfile",
            "gmail.users.messages.list", "gmail.users.messages.get", "gmail.users.messages.trash",
            "gmail.users.history.list", "calendar.events.list", "calendar.events.patch", "drive.files.list",
            "drive.changes.getStartPageToken", "drive.changes.list", "people.people.connections.list",
            "people.otherContacts.list", "people.contactGroups.list", "people.contactGroups.create",
            "people.contactGroups.get", "people.contactGroups.members.modify", "people.people.deleteContact"}
    assert used - set(recorder.answers) == set()
    assert recorder.errors[:40] == []
    assert sorted(recorder.bad_reads) == []


def test_the_validator_rejects_what_google_would_not_send():
    """The checks above can fail: an unknown field, a mail-date time, an int64 as a number, a
    missing end, a field outside the mask and a connector read of an undeclared key."""
    rec = Recorder()
    doc, method = rec.methods["calendar.events.list"]
    answer = {"kind": "calendar#events", "etag": '"1"', "colour": "red",
              "items": [{"kind": "calendar#event", "etag": '"2"', "id": "e1", "status": "confirmed",
                         "updated": "2026-01-01T00:00:00.000Z", "start": {"dateTime": "Tue, 3 Nov 2026 10:00:00 +0200"},
                         "sequence": "1"}]}
    errors = Errors()
    validate(answer, method["response"], doc, "events", errors)
    assert any(".colour: not in the discovery schema" in e for e in errors)
    assert any("dateTime: 'Tue, 3 Nov 2026 10:00:00 +0200' is not RFC 3339" in e for e in errors)
    assert any("sequence: '1', expected integer" in e for e in errors)
    assert any("Event lacks end" in e for e in errors)
    assert outside_mask({"changes": [{"fileId": "1", "kind": "drive#change"}]}, parse_mask("changes(fileId)"), "c") \
        == ["c.changes[0].kind: sent though the fields mask left it out"]
    tracked = rec.receive("calendar.events.list", "http://x/?fields=", {"kind": "calendar#events", "etag": '"1"'})
    tracked.get("colour")
    assert rec.bad_reads == {"calendar.events.list: reads Events.colour"}


def test_the_imitation_grants_no_scope_google_would_refuse():
    """For every method the connector calls, a token whose only scope is one the discovery
    document does not list for that method is refused by the imitation (403), as by Google."""
    from sandbox.google import _scope_allows

    docs = load_documents()
    methods = method_index(docs)
    every_scope = {sc for doc in docs.values() for sc in (doc.get("auth") or {}).get("oauth2", {}).get("scopes", {})}
    called = ("directory.users.list", "directory.groups.list", "directory.members.list", "directory.members.delete",
              "gmail.users.getProfile", "gmail.users.messages.list", "gmail.users.messages.get",
              "gmail.users.messages.trash", "gmail.users.messages.batchDelete", "gmail.users.history.list",
              "calendar.events.list", "calendar.events.patch", "drive.files.list", "drive.files.get",
              "drive.permissions.delete", "drive.changes.getStartPageToken", "drive.changes.list",
              "people.people.connections.list", "people.people.deleteContact", "people.otherContacts.list",
              "people.contactGroups.list", "people.contactGroups.create", "people.contactGroups.get",
              "people.contactGroups.members.modify")
    too_easy = []
    for method_id in called:
        doc, method = methods[method_id]
        path = "/" + doc["servicePath"] + re.sub(r"\{\+?[^}]+\}", "x", method.get("flatPath") or method["path"])
        allowed = set(method.get("scopes") or [])
        assert allowed, method_id
        for scope in sorted(every_scope - allowed):
            if _scope_allows(frozenset({scope}), method["httpMethod"], path):
                too_easy.append(f"{method_id} accepts {scope}")
    assert too_easy == [], too_easy


# Google's "Using OAuth 2.0 for Server to Server Applications", error codes table
# (developers.google.com/identity/protocols/oauth2/service-account): a scope the Admin console's
# domain-wide delegation does not grant refuses the token request with this error and text.
UNAUTHORIZED_CLIENT = ("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, "
                       "or client not authorized for any of the scopes requested.")


def test_a_scope_domain_wide_delegation_does_not_grant_is_refused_as_google_documents(google_sandbox):
    """The imitation refuses the whole token request (401, RFC 6749 5.2 body with Google's
    error and text) when one asked scope is not delegated, and grants it once it is."""
    import requests
    from google.auth import exceptions as gauth_errors
    from google.auth.transport.requests import Request as AuthRequest
    from google.oauth2 import service_account

    from connectors.google_workspace import settings_from_env

    g = google_sandbox.google
    settings = settings_from_env(google_sandbox.env())
    info = dict(settings.service_account_info, token_uri=settings.token_uri)
    gmail = "https://www.googleapis.com/auth/gmail.readonly"
    drive = "https://www.googleapis.com/auth/drive.readonly"
    g.delegated_scopes = frozenset({drive})
    creds = service_account.Credentials.from_service_account_info(info, scopes=[drive, gmail]).with_subject(g.admin_email)
    with pytest.raises(gauth_errors.RefreshError) as refused:
        creds.refresh(AuthRequest(session=requests.Session()))
    body = refused.value.args[1]
    assert (body["error"], body["error_description"]) == UNAUTHORIZED_CLIENT
    g.delegated_scopes = frozenset({drive, gmail})
    creds.refresh(AuthRequest(session=requests.Session()))
    assert creds.valid
