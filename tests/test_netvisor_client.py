"""Netvisor client and sandbox over real HTTP: MAC authentication, TransactionId freshness,
character sets, hostile or broken answers, and one request in flight per customer. The protocol
details as Netvisor documents them: tests/test_netvisor_protocol.py."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import requests

from connectors.errors import AuthError, BadPayloadError, RetryableError
from connectors.netvisor import (
    MARKETING_BAN,
    Credentials,
    NetvisorAuth,
    NetvisorClient,
    NetvisorError,
)
from netvisor_support import FAST_RETRY, fixed_answers, netvisor_client

REPO = Path(__file__).resolve().parents[1]


def creds_of(sandbox) -> Credentials:
    env = sandbox.env()
    return Credentials(env["NETVISOR_SENDER"], env["NETVISOR_CUSTOMER_ID"], env["NETVISOR_PARTNER_ID"],
                       env["NETVISOR_CUSTOMER_KEY"], env["NETVISOR_PARTNER_KEY"], env["NETVISOR_ORGANISATION_ID"])


def test_wrong_key_is_rejected_and_the_error_says_authentication_failed(netvisor_sandbox, tmp_path):
    client = netvisor_client(netvisor_sandbox, tmp_path, customer_key="not-the-key")
    with pytest.raises(AuthError) as caught:
        client.customer_list()
    client.close()
    text = str(caught.value)
    assert "authentication failed" in text
    assert "AUTHENTICATION_FAILED :: " in text  # the vendor's CATEGORY :: text is kept
    assert "not-the-key" not in text
    assert netvisor_sandbox.netvisor.auth_failures == 1  # an auth failure is not retried
    # The right key works against the same sandbox.
    good = netvisor_client(netvisor_sandbox, tmp_path)
    assert len(good.customer_list().items) == len(netvisor_sandbox.netvisor.customers)
    good.close()


def test_sandbox_checks_the_mac_over_the_url_and_refuses_a_repeated_transaction(netvisor_sandbox):
    base = netvisor_sandbox.url("netvisor")
    session = requests.Session()
    signed = requests.Request("GET", f"{base}/customerlist.nv", params={"keyword": "oy"},
                              auth=NetvisorAuth(creds_of(netvisor_sandbox))).prepare()
    first = session.send(signed)
    assert b"<Status>OK</Status>" in first.content
    again = session.send(signed)  # same headers, same TransactionId
    assert b"REQUEST_NOT_UNIQUE ::" in again.content
    assert netvisor_sandbox.netvisor.repeated_transactions == 1
    tampered = requests.Request("GET", f"{base}/customerlist.nv", params={"keyword": "oy"},
                                auth=NetvisorAuth(creds_of(netvisor_sandbox))).prepare()
    tampered.url = f"{base}/customerlist.nv?keyword=ab"  # signed for another URL
    answer = session.send(tampered)
    assert answer.status_code == 403 and b"AUTHENTICATION_FAILED ::" in answer.content
    unsigned = session.get(f"{base}/customerlist.nv")
    assert b"AUTHENTICATION_FAILED ::" in unsigned.content


def test_every_request_carries_a_fresh_transaction_id(netvisor_sandbox, tmp_path):
    client = netvisor_client(netvisor_sandbox, tmp_path)
    for _ in range(5):
        client.customer_list()
    client.close()
    nv = netvisor_sandbox.netvisor
    assert len(nv._seen_transactions) == 5 and nv.repeated_transactions == 0


def test_finnish_characters_survive_a_round_trip(netvisor_sandbox, tmp_path):
    # Requests go out in ISO-8859-15 (declared), answers come back in UTF-8 (declared), as
    # Netvisor's documentation example shows.
    nv = netvisor_sandbox.netvisor
    customer_id = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    session = requests.Session()
    client = netvisor_client(netvisor_sandbox, tmp_path)
    pid = nv.add_contact_person(customer_id, "Väinö", "Pöllänen")
    first, last = "Åsa-Märta Žaneta", "Öhman-Šešelj € Łukasz"  # Ł is not in ISO-8859-15: a character reference
    after = client.edit_contact_person(customer_id, pid, first_name=first, last_name=last,
                                       email="asa.ohman@example.fi")
    assert (after["first_name"], after["last_name"]) == (first, last)
    assert (nv.contact_persons[pid]["first_name"], nv.contact_persons[pid]["last_name"]) == (first, last)
    raw = session.send(requests.Request("GET", f"{netvisor_sandbox.url('netvisor')}/getcustomer.nv",
                                        params={"idlist": str(customer_id)},
                                        auth=NetvisorAuth(creds_of(netvisor_sandbox))).prepare())
    assert "utf-8" in raw.headers["Content-Type"]
    assert "Åsa-Märta Žaneta Öhman-Šešelj € Łukasz".split()[0].encode("utf-8") in raw.content
    assert "Łukasz".encode("utf-8") in raw.content
    client.close()


def test_marketing_ban_is_not_applicable(netvisor_sandbox, tmp_path):
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.marketing_ban("anyone@example.fi") == MARKETING_BAN == "not_applicable"
    assert netvisor_sandbox.netvisor.total_requests() == 0
    client.close()


# -- broken and hostile answers ---------------------------------------------------------------

BOMB = (
    '<?xml version="1.0" encoding="ISO-8859-15"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + ']>\n<Root><ResponseStatus><Status>OK</Status></ResponseStatus><Customerlist>&lol9;</Customerlist></Root>'
).encode("iso-8859-15")
SHIFT_JIS = ('<?xml version="1.0" encoding="Shift_JIS"?><Root><ResponseStatus><Status>OK</Status></ResponseStatus>'
             '<Customerlist /></Root>').encode()
FAILED = ('<?xml version="1.0" encoding="ISO-8859-15"?><Root><ResponseStatus><Status>FAILED</Status>'
          '<Status>INVALID_DATA :: Customer code is missing</Status></ResponseStatus></Root>').encode("iso-8859-15")
BODIES = {
    "/notxml/customerlist.nv": b'{"success": true}',
    "/html/customerlist.nv": b"<html><body>Service Unavailable</body></html>",
    "/truncated/customerlist.nv": b'<?xml version="1.0" encoding="ISO-8859-15"?><Root><ResponseStatus><Stat',
    "/sjis/customerlist.nv": SHIFT_JIS,
    "/bomb/customerlist.nv": BOMB,
    "/failed/customerlist.nv": FAILED,
    "/empty/customerlist.nv": b"",
}


@pytest.fixture
def odd_server():
    with fixed_answers(BODIES) as served:
        yield served


def _odd_client(base: str, prefix: str, tmp_path) -> NetvisorClient:
    return NetvisorClient(f"{base}/{prefix}", sender="t", customer_id="c", partner_id="p", customer_key="k",
                          partner_key="q", organisation_id="1234567-8", retry=FAST_RETRY, lock_dir=tmp_path,
                          timeout=(2.0, 5.0))


@pytest.mark.parametrize("prefix, expected, retried", [
    ("notxml", "body is not XML", True),
    ("html", "root element is 'html', not 'Root'", False),
    ("truncated", "malformed XML", True),
    ("empty", "empty body", True),
    ("sjis", "declared encoding 'shift_jis', expected UTF-8 or ISO-8859-15", False),
    ("bomb", "DTD or entity declarations are not allowed", False),
])
def test_broken_or_hostile_answers_are_refused_clearly(odd_server, tmp_path, prefix, expected, retried):
    base, hits = odd_server
    client = _odd_client(base, prefix, tmp_path)
    with pytest.raises(BadPayloadError) as caught:
        client.customer_list()
    client.close()
    assert expected in str(caught.value)
    assert "customerlist.nv" in str(caught.value)
    count = hits[f"/{prefix}/customerlist.nv"]
    # Damage on the way may be transient (retried); a foreign encoding, a page that is not
    # Netvisor's or a bomb is not.
    assert count == (FAST_RETRY.max_attempts if retried else 1)


def test_a_failed_status_keeps_category_and_text(odd_server, tmp_path):
    base, _hits = odd_server
    client = _odd_client(base, "failed", tmp_path)
    with pytest.raises(NetvisorError) as caught:
        client.customer_list()
    client.close()
    assert "INVALID_DATA :: Customer code is missing" in str(caught.value)
    assert not isinstance(caught.value, RetryableError)


# -- one request in flight per customer ------------------------------------------------------

def test_threads_sharing_the_customer_lock_never_overlap(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    nv.latency_s = 0.02  # long enough that unsynchronised callers would overlap
    clients = [netvisor_client(netvisor_sandbox, tmp_path / "locks") for _ in range(3)]

    def work(client):
        for _ in range(8):
            client.customer_list()

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert nv.total_requests() == 24
    assert nv.violations == 0


PROBE = textwrap.dedent("""
    import json, os, sys
    from connectors.netvisor import NetvisorClient
    env = json.loads(sys.argv[1])
    client = NetvisorClient(env["NETVISOR_BASE_URL"], sender=env["NETVISOR_SENDER"],
        customer_id=env["NETVISOR_CUSTOMER_ID"], partner_id=env["NETVISOR_PARTNER_ID"],
        customer_key=env["NETVISOR_CUSTOMER_KEY"], partner_key=env["NETVISOR_PARTNER_KEY"],
        organisation_id=env["NETVISOR_ORGANISATION_ID"], lock_dir=sys.argv[2])
    failed = 0
    for _ in range(int(sys.argv[3])):
        try:
            client.customer_list()
        except Exception:
            failed += 1
    print(failed)
""")


def _run_processes(sandbox, lock_dirs, calls: int) -> list[int]:
    import json
    procs = [subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(sandbox.env()), str(d), str(calls)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for d in lock_dirs]
    return [int(p.communicate(timeout=120)[0].strip() or -1) for p in procs]


def test_processes_sharing_the_lock_file_never_overlap_and_the_sandbox_would_notice(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    nv.latency_s = 0.05
    failures = _run_processes(netvisor_sandbox, [tmp_path / "shared", tmp_path / "shared"], 10)
    assert failures == [0, 0]
    assert nv.violations == 0
    assert nv.total_requests() == 20
    # Control: without a shared lock the same two processes do overlap, and the sandbox
    # counts (and refuses) it, so the zero above means something.
    _run_processes(netvisor_sandbox, [tmp_path / "a", tmp_path / "b"], 60)
    assert nv.violations > 0
