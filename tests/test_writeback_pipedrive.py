"""The Pipedrive mark (label and/or custom field) that the marketing ban and the restriction set,
read from one set of settings per right through one function."""

from __future__ import annotations

import pytest

from contact_register.requests.restriction.pipedrive import restriction_mark
from contact_register.requests.writeback.pipedrive import BAN_SETTINGS, PipedriveMark, mark_from_env

NAMES = ("LABEL_ID", "FIELD", "FIELD_VALUE")


@pytest.fixture
def clean_env(monkeypatch):
    for prefix in ("PIPEDRIVE_BAN", "PIPEDRIVE_RESTRICTION"):
        for name in NAMES:
            monkeypatch.delenv(f"{prefix}_{name}", raising=False)
    return monkeypatch


def test_each_right_reads_its_own_settings(clean_env):
    clean_env.setenv("PIPEDRIVE_BAN_LABEL_ID", "24")
    clean_env.setenv("PIPEDRIVE_RESTRICTION_FIELD", "abc123")
    clean_env.setenv("PIPEDRIVE_RESTRICTION_FIELD_VALUE", "7")
    assert mark_from_env(BAN_SETTINGS) == PipedriveMark(24, None, None)
    assert restriction_mark() == PipedriveMark(None, "abc123", 7)  # digits travel as an enum option id


def test_restriction_without_settings_is_none_and_bad_settings_are_named(clean_env):
    assert restriction_mark() is None
    clean_env.setenv("PIPEDRIVE_RESTRICTION_LABEL_ID", "Käsittely rajoitettu")
    with pytest.raises(ValueError, match="PIPEDRIVE_RESTRICTION_LABEL_ID must be a label id"):
        restriction_mark()
    clean_env.setenv("PIPEDRIVE_BAN_FIELD", "abc123")
    with pytest.raises(ValueError, match="PIPEDRIVE_BAN_FIELD needs PIPEDRIVE_BAN_FIELD_VALUE"):
        mark_from_env(BAN_SETTINGS)


def test_mark_is_put_on_and_taken_off():
    mark = PipedriveMark(5, "abc123", "yes")
    person = {"label_ids": [3], "custom_fields": {"abc123": None}}
    assert mark.marks(person) == []
    assert mark.changes_for(person) == {"label_ids": [3, 5], "custom_fields": {"abc123": "yes"}}
    marked = {"label_ids": [3, 5], "custom_fields": {"abc123": "yes"}, "marketing_status": "unsubscribed"}
    assert mark.marks(marked) == ["status", "label", "field"]
    assert mark.changes_for(marked) == {}
    assert mark.removal_for(marked) == {"label_ids": [3], "custom_fields": {"abc123": None}}
