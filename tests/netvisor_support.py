"""Helpers shared by the Netvisor tests: clients pointed at a sandbox, store snapshots, and a
server that answers fixed XML bodies (hostile or odd answers the imitation never sends)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from connectors.http import RetryPolicy
from connectors.legal_hold import FinancialYears
from connectors.netvisor import NetvisorClient

FAST_RETRY = RetryPolicy(max_attempts=8, backoff_base_s=0.02, backoff_max_s=0.2)


def netvisor_client(sandbox, lock_dir: Path, *, customer_key: str | None = None,
                    financial_years: FinancialYears = FinancialYears(), timeout=(2.0, 5.0)) -> NetvisorClient:
    env = sandbox.env()
    return NetvisorClient(
        env["NETVISOR_BASE_URL"], sender=env["NETVISOR_SENDER"], customer_id=env["NETVISOR_CUSTOMER_ID"],
        partner_id=env["NETVISOR_PARTNER_ID"], customer_key=customer_key or env["NETVISOR_CUSTOMER_KEY"],
        partner_key=env["NETVISOR_PARTNER_KEY"], organisation_id=env["NETVISOR_ORGANISATION_ID"],
        timeout=timeout, retry=FAST_RETRY, lock_dir=lock_dir, financial_years=financial_years,
    )


@contextmanager
def fixed_answers(bodies: dict[str, bytes]) -> Iterator[tuple[str, dict[str, int]]]:
    """A local HTTP server answering each path's body (query ignored; unknown paths an empty
    body) as ``text/xml``; yields its base URL and the count of requests per path."""
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            hits[path] = hits.get(path, 0) + 1
            body = bodies.get(path, b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def blank(value):
    return None if value in (None, "") else value


def sandbox_snapshot(nv) -> dict:
    """What the sandbox holds, in the raw tables' terms (empty strings as NULL)."""
    customers = {cid: (blank(c["name"]), blank(c["business_id"]), blank(c["email"]), blank(c["contact_person"]),
                       blank(c["contact_email"]), bool(c["is_private"]))
                 for cid, c in nv.customers.items()}
    persons = {pid: (p["customer_id"], blank(p["first_name"]), blank(p["last_name"]), blank(p["email"]), blank(p["phone"]))
               for pid, p in nv.contact_persons.items()}
    invoices = {k: (i["number"], i["date"], i["customer_id"], i["contact_person_id"]) for k, i in nv.invoices.items()}
    return {"customers": customers, "contact_persons": persons, "invoices": invoices}


def store_snapshot(con) -> dict:
    customers = {r[0]: tuple(r[1:]) for r in con.execute(
        "SELECT id, name, business_id, email, contact_person, contact_person_email, is_private FROM customers").fetchall()}
    persons = {r[0]: tuple(r[1:]) for r in con.execute(
        "SELECT id, customer_id, first_name, last_name, email, phone FROM contact_persons").fetchall()}
    invoices = {r[0]: tuple(r[1:]) for r in con.execute(
        "SELECT id, invoice_number, invoice_date, customer_id, contact_person_id FROM invoices"
    ).fetchall()}
    return {"customers": customers, "contact_persons": persons, "invoices": invoices}
