"""Turns the compact Pipedrive world into API-shaped dicts (v2 for persons, organizations, deals
and activities; v1 for notes and mail), and renders field definitions in v2 and v1 shape."""

from __future__ import annotations

import time
from typing import Any

from .pipedrive_world import FieldDef, PipedriveWorld

V2_FMT = "%Y-%m-%dT%H:%M:%SZ"
V1_FMT = "%Y-%m-%d %H:%M:%S"
MARKETING_STATUSES = ("no_consent", "unsubscribed", "subscribed", "archived")


_DAYS: dict[int, str] = {}


def _split(ts: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "HH:MM:SS") by arithmetic with a per-day cache: gmtime+strftime for a
    million timestamps was the slowest part of building a large store."""
    days, rest = divmod(int(ts), 86400)
    day = _DAYS.get(days)
    if day is None:
        day = _DAYS[days] = time.strftime("%Y-%m-%d", time.gmtime(days * 86400))
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return day, f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def v2time(ts: int) -> str:
    day, clock = _split(ts)
    return f"{day}T{clock}Z"


def v1time(ts: int) -> str:
    day, clock = _split(ts)
    return f"{day} {clock}"


def address(street: str, postal: str, city: str) -> dict[str, Any]:
    """v2 address object: value plus its parts, nothing else (no ``formatted_address``, which
    was v1's flat ``address_formatted_address``): the organizations reference,
    https://developers.pipedrive.com/docs/api/v1/Organizations#getOrganizations."""
    route, _, number = street.partition(" ")
    return {
        "value": f"{street}, {postal} {city}, Suomi", "street_number": number or None, "route": route,
        "sublocality": None, "subpremise": None, "locality": city, "admin_area_level_1": None,
        "admin_area_level_2": None, "country": "Suomi", "postal_code": postal,
    }


def _custom(fields: list[FieldDef], values: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, v in zip((f for f in fields if f.is_custom), values):
        if v is None:
            out[f.key] = None
        elif f.field_type == "set":
            out[f.key] = list(v)
        elif f.field_type == "monetary":
            out[f.key] = {"value": v[0], "currency": v[1]}
        elif f.field_type == "address":
            out[f.key] = address(*v)
        else:
            out[f.key] = v
    return out


def _contacts(items: tuple) -> list[dict[str, Any]]:
    return [{"value": v, "primary": p, "label": lab} for v, lab, p in items]


# Fields that are the same on almost every record are left out of the stored dicts (a 200k
# activity world would otherwise spend ~100 MB on repeated None/False) and merged back in when a
# record is rendered or read; a stored value always wins over the default.
SPARSE_DEFAULTS: dict[str, dict[str, Any]] = {
    "activities": {"id": None, "subject": None, "type": None, "owner_id": None, "creator_user_id": None,
                   "is_deleted": False, "add_time": None, "update_time": None, "deal_id": None, "lead_id": None,
                   "person_id": None, "org_id": None, "project_id": None, "due_date": None, "due_time": None,
                   "duration": None, "busy": False, "done": False, "marked_as_done_time": None, "location": None,
                   "participants": [], "note": None, "public_description": None, "priority": None},
    "notes": {"id": None, "user_id": None, "deal_id": None, "person_id": None, "org_id": None, "lead_id": None,
              "project_id": None, "content": None, "add_time": None, "update_time": None, "active_flag": True,
              "pinned_to_deal_flag": False, "pinned_to_person_flag": False,
              "pinned_to_organization_flag": False, "pinned_to_lead_flag": False,
              "pinned_to_project_flag": False, "last_update_user_id": None},
    "deals": {"id": None, "title": None, "creator_user_id": None, "owner_id": None, "value": 0, "currency": "EUR",
              "person_id": None, "org_id": None, "pipeline_id": 1, "stage_id": 1, "status": "open",
              "add_time": None, "update_time": None, "is_deleted": False, "probability": None, "lost_reason": None,
              "visible_to": 3, "close_time": None, "won_time": None, "lost_time": None,
              "expected_close_date": None, "label_ids": [], "custom_fields": {}},
    "mail": {"id": None, "from": [], "to": [], "cc": [], "bcc": [], "body_url": None, "account_id": "sandbox",
             "user_id": None, "mail_thread_id": None, "subject": None, "snippet": None,
             "mail_tracking_status": None, "mail_link_tracking_enabled_flag": 0, "read_flag": 1, "draft": None,
             "draft_flag": 0, "synced_flag": 1, "deleted_flag": 0, "has_body_flag": 1, "sent_flag": 0,
             "sent_from_pipedrive_flag": 0, "smart_bcc_flag": 0, "message_time": None, "add_time": None,
             "update_time": None, "has_attachments_flag": 0, "has_inline_attachments_flag": 0,
             "has_real_attachments_flag": 0},
}


def build_store(pw: PipedriveWorld) -> tuple[dict[str, dict[int, dict]], dict[int, list[dict]]]:
    fields = pw.fields
    persons: dict[int, dict] = {}
    for p in pw.persons:
        # Deterministic mix of consent states; nobody without an email can have consent.
        status = MARKETING_STATUSES[(p.id * 7) % 4] if p.emails else "no_consent"
        persons[p.id] = {
            "id": p.id, "name": p.name, "first_name": p.first_name, "last_name": p.last_name,
            "owner_id": p.owner_id, "org_id": p.org_id, "picture_id": None,
            "add_time": v2time(p.add_time), "update_time": v2time(p.update_time), "visible_to": 3,
            "label_ids": list(p.label_ids), "is_deleted": False, "emails": _contacts(p.emails),
            "phones": _contacts(p.phones), "job_title": p.job_title,
            "custom_fields": _custom(fields["persons"], p.custom), "marketing_status": status,
        }
    orgs: dict[int, dict] = {}
    for o in pw.orgs:
        orgs[o.id] = {
            "id": o.id, "name": o.name, "owner_id": o.owner_id, "add_time": v2time(o.add_time),
            "update_time": v2time(o.update_time), "visible_to": 3, "label_ids": [], "is_deleted": False,
            "address": address(*o.address), "custom_fields": _custom(fields["organizations"], o.custom),
        }
    deals: dict[int, dict] = {}
    for d in pw.deals:
        closed = v2time(d.update_time) if d.status != "open" else None
        deal = {
            "id": d.id, "title": d.title, "creator_user_id": d.owner_id, "owner_id": d.owner_id,
            "value": d.value, "person_id": d.person_id, "org_id": d.org_id, "pipeline_id": 1,
            "stage_id": d.stage_id, "status": d.status, "add_time": v2time(d.add_time),
            "update_time": v2time(d.update_time), "custom_fields": _custom(fields["deals"], d.custom),
        }
        if d.status != "open":
            deal["close_time"] = closed
            deal[f"{d.status}_time"] = closed
            if d.status == "lost":
                deal["lost_reason"] = "Hinta"
        deals[d.id] = deal
    activities: dict[int, dict] = {}
    days: dict[str, str] = {}  # one string object per due date
    for a in pw.activities:
        activities[a.id] = {  # constant fields come from SPARSE_DEFAULTS when rendered
            "id": a.id, "subject": a.subject, "type": a.type, "owner_id": a.owner_id,
            "creator_user_id": a.owner_id, "add_time": v2time(a.add_time),
            "update_time": v2time(a.update_time), "deal_id": a.deal_id,
            "person_id": a.person_id, "org_id": a.org_id, "due_date": days.setdefault(a.due_date, a.due_date),
            "done": a.done,
            "marked_as_done_time": v2time(a.update_time) if a.done else None,
        }  # no "participants": rendered from person_id until a write sets them
    notes: dict[int, dict] = {}
    for n in pw.notes:
        notes[n.id] = {
            "id": n.id, "user_id": n.user_id, "deal_id": n.deal_id, "person_id": n.person_id,
            "org_id": n.org_id, "content": n.content,
            "add_time": v1time(n.add_time), "update_time": v1time(n.update_time), "last_update_user_id": n.user_id,
        }
    users = {uid: (name, email) for uid, name, email in pw.users}
    mail: dict[int, list[dict]] = {}
    for m in pw.mails:
        p = persons[m.person_id]
        person_party = {"id": m.id * 2, "email_address": p["emails"][0]["value"].strip(), "name": p["name"],
                        "linked_person_id": p["id"], "linked_person_name": p["name"],
                        "mail_message_party_id": m.id * 2}
        user_name, user_email = users[m.user_id]
        user_party = {"id": m.id * 2 + 1, "email_address": user_email, "name": user_name,
                      "linked_person_id": None, "linked_person_name": None, "mail_message_party_id": m.id * 2 + 1}
        sender, receiver = (user_party, person_party) if m.outgoing else (person_party, user_party)
        when = v1time(m.time)
        mail.setdefault(m.person_id, []).append({
            "id": m.id, "from": [sender], "to": [receiver], "user_id": m.user_id, "mail_thread_id": m.thread_id,
            "subject": m.subject, "snippet": m.snippet, "sent_flag": 1 if m.outgoing else 0,
            "message_time": when, "add_time": when, "update_time": when,
        })
    store = {"persons": persons, "organizations": orgs, "deals": deals, "activities": activities, "notes": notes}
    return store, mail


_OPTIONAL_FIELDS = {"marketing_status"}
_V1_KEYS = {"emails": "email", "phones": "phone", "label_ids": "label", "owner_id": "owner_id"}


def field_v2(f: FieldDef) -> dict[str, Any]:
    subfields = None
    if f.field_type == "monetary":
        subfields = [{"field_code": "currency", "field_name": "Valuutta", "field_type": "varchar"}]
    elif f.field_type == "address":
        subfields = [{"field_code": c, "field_name": c, "field_type": "varchar"}
                     for c in ("street_number", "route", "locality", "postal_code", "country")]
    return {
        "field_code": f.key, "field_name": f.name, "field_type": f.field_type,
        "options": [{"id": i, "label": label} for i, label in f.options] if f.options else None,
        "subfields": subfields, "is_custom_field": f.is_custom,
        "is_optional_response_field": f.key in _OPTIONAL_FIELDS,
    }


def field_v1(f: FieldDef, order: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": order + 1, "key": _V1_KEYS.get(f.key, f.key), "name": f.name, "order_nr": order,
        "field_type": f.field_type, "add_time": "2024-01-01 00:00:00", "update_time": "2024-01-01 00:00:00",
        "active_flag": True, "edit_flag": f.is_custom, "index_visible_flag": True,
        "details_visible_flag": True, "add_visible_flag": True, "important_flag": False,
        "bulk_edit_allowed": True, "searchable_flag": f.field_type in ("varchar", "address"),
        "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": f.key == "name",
    }
    if f.options:
        out["options"] = [{"id": i, "label": label} for i, label in f.options]
    return out
