"""The register's free text (notes, reasons, actors) goes through the same check as the
identifiers: a NUL or another control character is refused with a clear RegisterError naming the
field (PostgreSQL cannot store NUL in text at all), while line breaks in a note stay."""

from __future__ import annotations

import pytest

from contact_register.requests.cases import open_register
from contact_register.requests.cases.casebook import RegisterError
from contact_register.requests.cases.identifiers import validate_identifiers
from tests.test_register import pg_database, pg_url  # noqa: F401 - the register's PostgreSQL fixtures


@pytest.fixture(params=["sqlite", "postgresql"])
def reg(request, tmp_path):
    url = str(tmp_path / "register.sqlite") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    r = open_register(url)
    yield r
    r.close()


def _ids():
    return validate_identifiers(emails=["teksti.testaaja@yritys.fi"], name="Teksti Testaaja")


def test_control_characters_in_a_note_are_refused_by_name(reg):
    with pytest.raises(RegisterError, match="^note: contains control or unassigned characters$"):
        reg.new_case("access", _ids(), actor="officer", note="called back\x00")
    case = reg.new_case("access", _ids(), actor="officer")
    with pytest.raises(RegisterError, match="^actor: contains control"):
        reg.approve(case.case_id, action="erasure", actor="off\x1bicer")


def test_a_note_keeps_its_line_breaks_and_is_normalised(reg):
    case = reg.new_case("access", _ids(), actor="officer", note="  first line\nsecond\tline: Ka\u0308sittely  ")
    opened = reg.audit_trail(case.case_id)[0]
    assert opened["detail"]["note"] == "first line\nsecond\tline: K\u00e4sittely"
