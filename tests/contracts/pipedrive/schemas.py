"""Pipedrive's response contract for every list/get call our connector makes, written by hand
from Pipedrive's own reference, because no package on PyPI carries Pipedrive's OpenAPI files
(checked 2026-12: the Pipedrive packages there are small clients without the spec).

Each field names its source. The reference pages (https://developers.pipedrive.com/docs/api/v1/
<Entity>) show, per operation, the response schema and an example; both are Pipedrive's, and
both are rendered from https://developers.pipedrive.com/docs/api/v1/openapi.yaml (v1) and
.../openapi-v2.yaml (v2). Where the example carries a field the schema leaves out, the field is
in the contract with "(example)" in its source; ``include_fields`` values are cited from that
parameter's documented list. Pipedrive sends null for empty values even where the schema says
non-nullable, so null is accepted everywhere; names and types are what is judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REF = "https://developers.pipedrive.com/docs/api/v1/"
PERSONS = REF + "Persons#getPersons"                   # GET /api/v2/persons, /api/v2/persons/{id}
PERSONS_INCLUDE = PERSONS + " (include_fields values)"
SEARCH = REF + "Persons#searchPersons"                  # GET /api/v2/persons/search
MAIL = REF + "Persons#getPersonMailMessages"            # GET /v1/persons/{id}/mailMessages
FLOW = REF + "Persons#getPersonUpdates"                 # GET /v1/persons/{id}/flow
ORGS = REF + "Organizations#getOrganizations"           # GET /api/v2/organizations, /{id}
ORGS_INCLUDE = ORGS + " (include_fields values)"
DEALS = REF + "Deals#getDeals"                          # GET /api/v2/deals, /{id}
DEALS_EXAMPLE = DEALS + " (example)"
ACTIVITIES = REF + "Activities#getActivities"           # GET /api/v2/activities, /{id}
FIELDS = REF + "PersonFields#getPersonFields"           # the same shape on Organization/Deal/ActivityFields
NOTES = REF + "Notes#getNotes"                          # GET /v1/notes, /v1/notes/{id}
NOTES_EXAMPLE = NOTES + " (example)"
V2_PAGING = "https://pipedrive.readme.io/docs/core-api-concepts-pagination (cursor pagination)"
V1_PAGING = "https://pipedrive.readme.io/docs/core-api-concepts-pagination (offset pagination)"
ENVELOPE = "https://pipedrive.readme.io/docs/core-api-concepts-responses"


@dataclass(frozen=True)
class T:
    """A scalar: 'string', 'integer', 'number' (integer or float) or 'boolean'."""
    type: str
    src: str


@dataclass(frozen=True)
class Obj:
    props: dict[str, Any]
    src: str
    open: bool = False  # any key allowed (custom fields, a flow item's data)


@dataclass(frozen=True)
class Arr:
    items: Any
    src: str


@dataclass(frozen=True)
class Any_:
    """Any JSON value (a custom field's value: its type is the field definition's business)."""
    src: str


def s(src: str) -> T:
    return T("string", src)


def i(src: str) -> T:
    return T("integer", src)


def n(src: str) -> T:
    return T("number", src)


def b(src: str) -> T:
    return T("boolean", src)


def address(src: str) -> Obj:
    return Obj({k: s(src) for k in ("value", "country", "admin_area_level_1", "admin_area_level_2", "locality",
                                    "sublocality", "route", "street_number", "subpremise", "postal_code")}, src)


def contacts(src: str) -> Arr:
    return Arr(Obj({"value": s(src), "primary": b(src), "label": s(src)}, src), src)


PERSON = Obj({
    "id": i(PERSONS), "name": s(PERSONS), "first_name": s(PERSONS), "last_name": s(PERSONS),
    "owner_id": i(PERSONS), "org_id": i(PERSONS), "add_time": s(PERSONS), "update_time": s(PERSONS),
    "emails": contacts(PERSONS), "phones": contacts(PERSONS), "is_deleted": b(PERSONS), "visible_to": i(PERSONS),
    "label_ids": Arr(i(PERSONS), PERSONS), "picture_id": i(PERSONS), "postal_address": address(PERSONS),
    "notes": s(PERSONS), "im": contacts(PERSONS), "birthday": s(PERSONS), "job_title": s(PERSONS),
    "custom_fields": Obj({}, PERSONS, open=True),
    # only with include_fields
    **{k: i(PERSONS_INCLUDE) for k in (
        "next_activity_id", "last_activity_id", "open_deals_count", "related_open_deals_count",
        "closed_deals_count", "related_closed_deals_count", "participant_open_deals_count",
        "participant_closed_deals_count", "email_messages_count", "activities_count", "done_activities_count",
        "undone_activities_count", "files_count", "notes_count", "followers_count", "won_deals_count",
        "related_won_deals_count", "lost_deals_count", "related_lost_deals_count")},
    **{k: s(PERSONS_INCLUDE) for k in ("last_incoming_mail_time", "last_outgoing_mail_time", "marketing_status",
                                       "doi_status", "smart_bcc_email")},
}, PERSONS)

ORGANIZATION = Obj({
    "id": i(ORGS), "name": s(ORGS), "owner_id": i(ORGS), "add_time": s(ORGS), "update_time": s(ORGS),
    "is_deleted": b(ORGS), "visible_to": i(ORGS), "address": address(ORGS), "label_ids": Arr(i(ORGS), ORGS),
    "custom_fields": Obj({}, ORGS, open=True),
    **{k: i(ORGS_INCLUDE) for k in (
        "next_activity_id", "last_activity_id", "open_deals_count", "related_open_deals_count",
        "closed_deals_count", "related_closed_deals_count", "email_messages_count", "people_count",
        "activities_count", "done_activities_count", "undone_activities_count", "files_count", "notes_count",
        "followers_count", "won_deals_count", "related_won_deals_count", "lost_deals_count",
        "related_lost_deals_count")},
    "smart_bcc_email": s(ORGS_INCLUDE),
}, ORGS)

DEAL = Obj({
    "id": i(DEALS), "title": s(DEALS), "owner_id": i(DEALS), "person_id": i(DEALS), "org_id": i(DEALS),
    "pipeline_id": i(DEALS), "stage_id": i(DEALS), "value": n(DEALS), "currency": s(DEALS),
    "add_time": s(DEALS), "update_time": s(DEALS), "stage_change_time": s(DEALS), "is_deleted": b(DEALS),
    "is_archived": b(DEALS), "status": s(DEALS), "probability": n(DEALS), "lost_reason": s(DEALS),
    "visible_to": i(DEALS), "close_time": s(DEALS), "won_time": s(DEALS), "lost_time": s(DEALS),
    "expected_close_date": s(DEALS), "label_ids": Arr(i(DEALS), DEALS), "origin": s(DEALS),
    "origin_id": s(DEALS), "channel": i(DEALS), "channel_id": s(DEALS), "source_lead_id": s(DEALS),
    "arr": n(DEALS), "mrr": n(DEALS), "acv": n(DEALS), "custom_fields": Obj({}, DEALS, open=True),
    "creator_user_id": i(DEALS_EXAMPLE), "archive_time": s(DEALS_EXAMPLE), "local_won_date": s(DEALS_EXAMPLE),
    "local_lost_date": s(DEALS_EXAMPLE), "local_close_date": s(DEALS_EXAMPLE),
}, DEALS)

ACTIVITY = Obj({
    "id": i(ACTIVITIES), "subject": s(ACTIVITIES), "type": s(ACTIVITIES), "owner_id": i(ACTIVITIES),
    "creator_user_id": i(ACTIVITIES), "is_deleted": b(ACTIVITIES), "add_time": s(ACTIVITIES),
    "update_time": s(ACTIVITIES), "deal_id": i(ACTIVITIES), "lead_id": s(ACTIVITIES), "person_id": i(ACTIVITIES),
    "org_id": i(ACTIVITIES), "project_id": i(ACTIVITIES), "due_date": s(ACTIVITIES), "due_time": s(ACTIVITIES),
    "duration": s(ACTIVITIES), "busy": b(ACTIVITIES), "done": b(ACTIVITIES),
    "marked_as_done_time": s(ACTIVITIES), "location": address(ACTIVITIES),
    "participants": Arr(Obj({"person_id": i(ACTIVITIES), "primary": b(ACTIVITIES)}, ACTIVITIES), ACTIVITIES),
    # only with include_fields=attendees
    "attendees": Arr(Obj({"email": s(ACTIVITIES), "name": s(ACTIVITIES), "status": s(ACTIVITIES),
                          "is_organizer": b(ACTIVITIES), "person_id": i(ACTIVITIES), "user_id": i(ACTIVITIES)},
                         ACTIVITIES), ACTIVITIES),
    "conference_meeting_client": s(ACTIVITIES), "conference_meeting_url": s(ACTIVITIES),
    "conference_meeting_id": s(ACTIVITIES), "public_description": s(ACTIVITIES), "priority": i(ACTIVITIES),
    "note": s(ACTIVITIES),
}, ACTIVITIES)

FIELD = Obj({
    "field_name": s(FIELDS), "field_code": s(FIELDS), "field_type": s(FIELDS), "description": s(FIELDS + " (example)"),
    "options": Arr(Obj({"id": i(FIELDS), "label": s(FIELDS), "color": s(FIELDS), "update_time": s(FIELDS),
                        "add_time": s(FIELDS)}, FIELDS), FIELDS),
    "subfields": Arr(Obj({"field_code": s(FIELDS), "field_name": s(FIELDS), "field_type": s(FIELDS)}, FIELDS), FIELDS),
    "is_custom_field": b(FIELDS), "is_optional_response_field": b(FIELDS),
    "ui_visibility": Obj({}, FIELDS, open=True), "important_fields": Obj({}, FIELDS, open=True),
    "required_fields": Obj({}, FIELDS, open=True),
}, FIELDS)

NOTE = Obj({
    "id": i(NOTES), "active_flag": b(NOTES), "add_time": s(NOTES), "content": s(NOTES),
    "deal": Obj({"title": s(NOTES)}, NOTES), "lead_id": s(NOTES), "deal_id": i(NOTES),
    "last_update_user_id": i(NOTES), "org_id": i(NOTES), "organization": Obj({"name": s(NOTES)}, NOTES),
    "person": Obj({"name": s(NOTES)}, NOTES), "person_id": i(NOTES), "project_id": i(NOTES),
    "project": Obj({"title": s(NOTES)}, NOTES), "task_id": i(NOTES), "task": Obj({"title": s(NOTES)}, NOTES),
    "pinned_to_deal_flag": b(NOTES), "pinned_to_organization_flag": b(NOTES), "pinned_to_person_flag": b(NOTES),
    "pinned_to_project_flag": b(NOTES), "pinned_to_task_flag": b(NOTES), "pinned_to_lead_flag": b(NOTES_EXAMPLE),
    "update_time": s(NOTES), "user_id": i(NOTES),
    "user": Obj({"email": s(NOTES), "icon_url": s(NOTES), "is_you": b(NOTES), "name": s(NOTES)}, NOTES),
}, NOTES)

_PARTY = Obj({"id": i(MAIL), "email_address": s(MAIL), "name": s(MAIL), "linked_person_id": i(MAIL),
              "linked_person_name": s(MAIL), "mail_message_party_id": i(MAIL)}, MAIL)
MAIL_MESSAGE = Obj({
    "object": s(MAIL), "timestamp": s(MAIL),
    "data": Obj({
        "id": i(MAIL), "from": Arr(_PARTY, MAIL), "to": Arr(_PARTY, MAIL), "cc": Arr(_PARTY, MAIL),
        "bcc": Arr(_PARTY, MAIL), "body_url": s(MAIL), "account_id": s(MAIL), "user_id": i(MAIL),
        "mail_thread_id": i(MAIL), "subject": s(MAIL), "snippet": s(MAIL), "mail_tracking_status": s(MAIL),
        # the 0/1 flags are numbers in the reference
        **{k: n(MAIL) for k in ("mail_link_tracking_enabled_flag", "read_flag", "draft_flag", "synced_flag",
                                "deleted_flag", "has_body_flag", "sent_flag", "sent_from_pipedrive_flag",
                                "smart_bcc_flag", "has_attachments_flag", "has_inline_attachments_flag",
                                "has_real_attachments_flag")},
        "draft": s(MAIL), "message_time": s(MAIL), "add_time": s(MAIL), "update_time": s(MAIL),
        "nylas_id": s(MAIL), "s3_bucket": s(MAIL), "s3_bucket_path": s(MAIL), "external_deleted_flag": b(MAIL),
        "mua_message_id": s(MAIL), "template_id": i(MAIL), "timestamp": s(MAIL), "item_type": s(MAIL),
        "company_id": i(MAIL)}, MAIL),
}, MAIL)

# A flow item's data is a personChange, note, activity ... object: the reference leaves it open.
FLOW_ITEM = Obj({"object": s(FLOW), "timestamp": s(FLOW), "data": Obj({}, FLOW, open=True)}, FLOW)

SEARCH_ITEM = Obj({
    "result_score": n(SEARCH),
    "item": Obj({"id": i(SEARCH), "type": s(SEARCH), "name": s(SEARCH), "phones": Arr(s(SEARCH), SEARCH),
                 "emails": Arr(s(SEARCH), SEARCH), "visible_to": i(SEARCH), "owner": Obj({"id": i(SEARCH)}, SEARCH),
                 "organization": Obj({"id": i(SEARCH), "name": s(SEARCH), "address": s(SEARCH + " (example)")},
                                     SEARCH),
                 "custom_fields": Arr(s(SEARCH), SEARCH), "notes": Arr(s(SEARCH), SEARCH)}, SEARCH),
}, SEARCH)


def v2_list(item: Obj) -> Obj:
    return Obj({"success": b(ENVELOPE), "data": Arr(item, item.src),
                "additional_data": Obj({"next_cursor": s(V2_PAGING)}, V2_PAGING)}, ENVELOPE)


def v2_one(item: Obj) -> Obj:
    return Obj({"success": b(ENVELOPE), "data": item}, ENVELOPE)


# The mail and flow schemas put start/limit/more_items_in_collection straight in additional_data,
# but their examples (and the pagination guide) nest them in `pagination`: the guide is followed.
_V1_PAGINATION = Obj({"pagination": Obj({"start": i(V1_PAGING), "limit": i(V1_PAGING),
                                         "more_items_in_collection": b(V1_PAGING), "next_start": i(V1_PAGING)},
                                        V1_PAGING)}, V1_PAGING)


def v1_list(item: Obj) -> Obj:
    return Obj({"success": b(ENVELOPE), "data": Arr(item, item.src), "additional_data": _V1_PAGINATION}, ENVELOPE)


# Route template (as the connector calls it) -> contract of the answer.
CONTRACT: dict[str, Obj] = {
    "GET /api/v2/persons": v2_list(PERSON),
    "GET /api/v2/persons/{id}": v2_one(PERSON),
    "GET /api/v2/organizations": v2_list(ORGANIZATION),
    "GET /api/v2/organizations/{id}": v2_one(ORGANIZATION),
    "GET /api/v2/deals": v2_list(DEAL),
    "GET /api/v2/deals/{id}": v2_one(DEAL),
    "GET /api/v2/activities": v2_list(ACTIVITY),
    "GET /api/v2/activities/{id}": v2_one(ACTIVITY),
    "GET /api/v2/persons/search": Obj({"success": b(ENVELOPE), "data": Obj({"items": Arr(SEARCH_ITEM, SEARCH)}, SEARCH),
                                       "additional_data": Obj({"next_cursor": s(V2_PAGING)}, V2_PAGING)}, ENVELOPE),
    "GET /api/v2/{fields}": v2_list(FIELD),
    "GET /api/v1/notes": v1_list(NOTE),
    "GET /api/v1/notes/{id}": Obj({"success": b(ENVELOPE), "data": NOTE}, ENVELOPE),
    "GET /api/v1/persons/{id}/mailMessages": v1_list(MAIL_MESSAGE),
    "GET /api/v1/persons/{id}/flow": v1_list(FLOW_ITEM),
}

_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def check(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Problems of ``value`` against ``schema``: unknown names and wrong types (null passes).
    A small checker instead of ``jsonschema``, which the project does not install."""
    if value is None or isinstance(schema, Any_):
        return []
    if isinstance(schema, T):
        ok = isinstance(value, _TYPES[schema.type]) and (schema.type == "boolean" or not isinstance(value, bool))
        return [] if ok else [f"{path}: {type(value).__name__} where {schema.type} is documented ({schema.src})"]
    if isinstance(schema, Arr):
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} where an array is documented ({schema.src})"]
        return [p for k, item in enumerate(value) for p in check(item, schema.items, f"{path}[{k}]")]
    if not isinstance(value, dict):
        return [f"{path}: {type(value).__name__} where an object is documented ({schema.src})"]
    if schema.open:
        return []
    problems = [f"{path}.{k}: not in the contract ({schema.src})" for k in value if k not in schema.props]
    return problems + [p for k, v in value.items() if k in schema.props for p in check(v, schema.props[k], f"{path}.{k}")]


def node(schema: Any, path: list[str]) -> Any:
    """The schema at ``path`` (object keys; "[]" steps into an array), or None if undocumented.
    Inside an open object every name is allowed: returns ``Any_``."""
    for step in path:
        if isinstance(schema, Obj) and schema.open:
            return Any_(schema.src)
        if step == "[]":
            schema = schema.items if isinstance(schema, Arr) else None
        else:
            schema = schema.props.get(step) if isinstance(schema, Obj) else None
        if schema is None:
            return None
    return schema
