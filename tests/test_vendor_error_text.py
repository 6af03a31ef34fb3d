"""A vendor's error text may quote what it refused (an address, a phone number, a name). It is
the vendor's, not ours: it never reaches the append-only audit trail, a case's recorded error or
a failure notice; describe() keeps our own words (system, method, path, status) only."""

from pathlib import Path

from connectors.errors import BadRequestError, describe
from contact_register.requests.erasure.byte_scan import phone_variants, scan
from contact_register.requests.export.exporters import Clients
from contact_register.requests.marketing_ban.run import ban_everywhere, record_outcomes
from contact_register.requests.cases import open_register, validate_identifiers
from pipelines.sensors import _error_text
from contact_register.requests.writeback.base import WritebackSubject
from tests.conftest import make_client


def test_a_vendor_error_quoting_the_person_leaves_no_trace_in_the_trail(sandbox, small_world, tmp_path, monkeypatch):
    pd = sandbox.pipedrive
    human = next(h for h in small_world.humans
                 if any(p.true_person_id == h.true_person_id and p.emails
                        for p in small_world.derive("pipedrive").persons))
    leaked = {"email": [human.email], "phone": phone_variants(human.phone_e164),
              "name": [f"{human.first_name} {human.last_name}"]}

    # The fault: every write answers 400 with a body that quotes the person, as a vendor's
    # validation error may ("... already exists", "invalid value ...").
    real_dispatch = pd.dispatch

    def refusing_writes(req):
        if req.method == "GET":
            return real_dispatch(req)
        return pd.error_response(req, 400, f"Invalid value for {human.first_name} {human.last_name} "
                                           f"<{human.email}>, phone {human.phone_e164}", "ERR_BAD_REQUEST")

    monkeypatch.setattr(pd, "dispatch", refusing_writes)
    register_path = tmp_path / "register.sqlite"
    with open_register(str(register_path)) as reg:
        ids = validate_identifiers([human.email])
        case_id = reg.new_case("objection", ids, actor="tietosuojavastaava", systems=["pipedrive"]).case_id
        subject = WritebackSubject(case_id=case_id, identifiers=ids, emails=[human.email],
                                   names=[f"{human.first_name} {human.last_name}"])
        clients = Clients({"pipedrive": lambda: make_client(sandbox)})
        try:
            outcomes = ban_everywhere(clients, subject, systems=["pipedrive"])
        finally:
            clients.close()
        assert outcomes["pipedrive"].state == "failed"
        record_outcomes(reg, case_id, outcomes, actor="dagster:test")
        case = reg.get(case_id, with_audit=True)
        recorded = case.systems["pipedrive"].error
        # What the trail keeps says what failed and where, in our words.
        assert recorded.startswith("BadRequestError: pipedrive PATCH") and "HTTP 400" in recorded
        trail = repr(case.audit) + recorded
        for values in leaked.values():
            for value in values:
                assert value not in trail and value.lower() not in trail.lower()
        # Closed, the case's identifiers go; the trail stays for good (it cannot be rewritten), so
        # the register's files, byte by byte, must hold nothing of the person.
        reg.close_case(case_id, outcome="objection handled", actor="tietosuojavastaava", force=True)
    assert not scan([register_path, Path(f"{register_path}-wal")], leaked)


def test_describe_and_the_failure_notice_drop_the_vendor_text_but_the_exception_keeps_it():
    exc = BadRequestError("bad request", vendor_text="Person matti.virtanen@yritys.fi exists",
                          system="pipedrive", method="POST", path="/api/v2/persons", status=400)
    assert "matti.virtanen@yritys.fi" in str(exc)  # for whoever debugs the exception in hand
    assert describe(exc) == "BadRequestError: pipedrive POST /api/v2/persons -> HTTP 400: bad request"

    class Error:  # Dagster's serialised error of a step that raised it
        cls_name, message, cause = "BadRequestError", f"connectors.errors.BadRequestError: {exc}", None

    class Event:
        event_specific_data = type("Data", (), {"error": Error()})()
        message = ""

    assert _error_text(Event()) == "BadRequestError: pipedrive POST /api/v2/persons -> HTTP 400: bad request"
