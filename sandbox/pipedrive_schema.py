"""Strict validation of v2 write bodies: v2 rejects wrong types instead of coercing them
(booleans are true/false only, numbers are not parsed from strings), and unknown fields are
refused so that a client bug (e.g. sending v1's `email` instead of `emails`) fails loudly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .base import ApiError
from .pipedrive_build import MARKETING_STATUSES
from .pipedrive_world import FieldDef

Validator = Callable[[str, Any], Any]
CODE = "ERR_SCHEMA_VALIDATION_FAILED"


def _fail(name: str, expected: str) -> ApiError:
    return ApiError(400, f"Validation failed: {name}: must be {expected}", CODE)


def _str(name: str, v: Any) -> Any:
    if not isinstance(v, str):
        raise _fail(name, "a string")
    return v


def _opt(inner: Validator) -> Validator:
    return lambda name, v: None if v is None else inner(name, v)


def _int(name: str, v: Any) -> Any:
    if type(v) is not int:
        raise _fail(name, "an integer")
    return v


def _number(name: str, v: Any) -> Any:
    if type(v) not in (int, float):
        raise _fail(name, "a number")
    return v


def _bool(name: str, v: Any) -> Any:
    if type(v) is not bool:
        raise _fail(name, "a boolean (true or false)")
    return v


def _date(name: str, v: Any) -> Any:
    try:
        if not isinstance(v, str) or len(v) != 10:
            raise ValueError
        dt.date.fromisoformat(v)
    except ValueError:
        raise _fail(name, "a date YYYY-MM-DD") from None
    return v


def _one_of(*allowed: Any) -> Validator:
    def check(name: str, v: Any) -> Any:
        if type(v) is bool or v not in allowed:
            raise _fail(name, f"one of {', '.join(map(str, allowed))}")
        return v
    return check


def _int_list(name: str, v: Any) -> Any:
    if not isinstance(v, list) or any(type(i) is not int for i in v):
        raise _fail(name, "an array of integers")
    return list(v)


def _contacts(name: str, v: Any) -> Any:
    """[{value, primary?, label?}] -> label defaults to "work"; the first is primary if none is."""
    if not isinstance(v, list):
        raise _fail(name, "an array of objects")
    out = []
    for item in v:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or set(item) - {
                "value", "primary", "label"}:
            raise _fail(name, "an array of {value, primary, label} objects")
        primary = _bool(f"{name}.primary", item.get("primary", False))
        label = _str(f"{name}.label", item.get("label", "work"))
        out.append({"value": item["value"], "primary": primary, "label": label})
    if sum(1 for i in out if i["primary"]) > 1:
        raise ApiError(400, f"Validation failed: {name}: only one item can be primary", CODE)
    if out and not any(i["primary"] for i in out):
        out[0]["primary"] = True
    return out


def _participants(name: str, v: Any) -> Any:
    if not isinstance(v, list):
        raise _fail(name, "an array of objects")
    out = []
    for item in v:
        if not isinstance(item, dict):
            raise _fail(name, "an array of {person_id, primary} objects")
        out.append({"person_id": _int(f"{name}.person_id", item.get("person_id")),
                    "primary": _bool(f"{name}.primary", item.get("primary", False))})
    return out


ATTENDEE_KEYS = ("email", "name", "status", "is_organizer", "person_id", "user_id")


def _attendees(name: str, v: Any) -> Any:
    """v2 activity ``attendees``: objects of email, name, status (strings), is_organizer (boolean),
    person_id, user_id (integers), every key optional (AddActivityRequest / UpdateActivityRequest
    in https://developers.pipedrive.com/docs/api/v1/openapi-v2.yaml; the Activities page of
    https://developers.pipedrive.com/docs/api/v1/Activities). Stored with all six keys, absent
    ones as null, which is how the API answers empty values."""
    if not isinstance(v, list):
        raise _fail(name, "an array of objects")
    checks: dict[str, Validator] = {"email": _opt(_str), "name": _opt(_str), "status": _opt(_str),
                                    "is_organizer": _opt(_bool), "person_id": _opt(_int), "user_id": _opt(_int)}
    out = []
    for item in v:
        if not isinstance(item, dict) or set(item) - set(ATTENDEE_KEYS):
            raise _fail(name, f"an array of {{{', '.join(ATTENDEE_KEYS)}}} objects")
        out.append({k: checks[k](f"{name}.{k}", item.get(k)) for k in ATTENDEE_KEYS})
    return out


def _address(name: str, v: Any) -> Any:
    if not isinstance(v, dict) or not isinstance(v.get("value", ""), str):
        raise _fail(name, "an address object")
    return dict(v)


_COMMON: dict[str, Validator] = {
    "owner_id": _int, "visible_to": _one_of(1, 3, 5, 7), "label_ids": _int_list,
    "custom_fields": _str,  # placeholder: validate() checks custom fields against the field definitions
}

SCHEMAS: dict[str, dict[str, Validator]] = {
    "persons": {**_COMMON, "name": _str, "first_name": _str, "last_name": _str, "org_id": _opt(_int),
                "emails": _contacts, "phones": _contacts, "im": _contacts, "job_title": _opt(_str),
                "marketing_status": _one_of(*MARKETING_STATUSES)},
    "organizations": {**_COMMON, "name": _str, "address": _opt(_address)},
    "deals": {**_COMMON, "title": _str, "value": _number, "currency": _str, "person_id": _opt(_int),
              "org_id": _opt(_int), "pipeline_id": _int, "stage_id": _int, "status": _one_of("open", "won", "lost"),
              "probability": _opt(_int), "lost_reason": _opt(_str), "expected_close_date": _opt(_date)},
    # PATCH/POST /api/v2/activities body (Activities reference): no visible_to, label_ids or custom_fields
    "activities": {"owner_id": _int, "project_id": _opt(_int), "subject": _str, "type": _str, "deal_id": _opt(_int),
                   "person_id": _opt(_int),
                   "org_id": _opt(_int), "lead_id": _opt(_str), "due_date": _opt(_date),
                   "due_time": _opt(_str), "duration": _opt(_str), "busy": _bool, "done": _bool,
                   "location": _opt(_address), "note": _opt(_str), "public_description": _opt(_str),
                   "priority": _opt(_int), "participants": _participants, "attendees": _attendees},
}

REQUIRED = {"organizations": "name", "deals": "title"}


def _custom_value(f: FieldDef, v: Any) -> Any:
    name = f"custom_fields.{f.key}"
    if v is None:
        return None  # null clears a custom field
    t = f.field_type
    if t in ("varchar", "varchar_auto", "text", "phone"):
        return _str(name, v)
    if t == "double":
        return _number(name, v)
    if t == "date":
        return _date(name, v)
    if t == "enum":
        return _one_of(*(i for i, _ in f.options or ()))(name, v)
    if t == "set":
        ids = {i for i, _ in f.options or ()}
        if not isinstance(v, list) or not v or any(type(i) is not int or i not in ids for i in v):
            raise _fail(name, "a non-empty array of option ids (use null to clear)")
        return list(v)
    if t == "monetary":
        if not isinstance(v, dict) or set(v) - {"value", "currency"} or type(v.get("value")) not in (int, float) \
                or not isinstance(v.get("currency"), str):
            raise _fail(name, "an object {value, currency}")
        return dict(v)
    if t == "address":
        return _address(name, v)
    return v


def validate(entity: str, body: Any, fields: list[FieldDef], creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Validation failed: body must be a JSON object", CODE)
    schema = SCHEMAS[entity]
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name not in schema:
            raise ApiError(400, f"Validation failed: unknown field '{name}'", CODE)
        if name == "custom_fields":
            out[name] = _custom_fields(value, fields)
        else:
            out[name] = schema[name](name, value)
    if creating:
        if entity == "persons" and not out.get("name") and not (out.get("first_name") and out.get("last_name")):
            raise ApiError(400, "Validation failed: name, or first_name and last_name, is required", CODE)
        required = REQUIRED.get(entity)
        if required and not out.get(required):
            raise ApiError(400, f"Validation failed: {required} is required", CODE)
    return out


def _custom_fields(value: Any, fields: list[FieldDef]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, "Validation failed: custom_fields must be an object", CODE)
    by_key = {f.key: f for f in fields if f.is_custom}
    out = {}
    for key, v in value.items():
        if key not in by_key:
            raise ApiError(400, f"Validation failed: unknown custom field '{key}'", CODE)
        out[key] = _custom_value(by_key[key], v)
    return out
