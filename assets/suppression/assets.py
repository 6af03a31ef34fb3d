"""``suppression_check``: after each warehouse build, ban again whoever on the suppression list
re-entered a system (see ``check.py``). Metadata carries counts and case ids only."""

import duckdb
from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, asset

from connectors.errors import describe
from contact_register.requests.suppression.check import run_check
from contact_register.requests.export.exporters import Clients
from contact_register.requests.suppression.store import SuppressionKeyError, SuppressionList
from assets.system_resources import SYSTEM_RESOURCES, client_factories


@asset(
    key="suppression_check",
    deps=[AssetKey("persons"), AssetKey("marketing_bans")],
    group_name="suppression",
    kinds={"python"},
    required_resource_keys={"register", "storage", *SYSTEM_RESOURCES.values()},
    description="People on the suppression list found again in a system: banned again and recorded; "
                "an erased person re-collected becomes a new case for the operator.",
)
def suppression_check(context: AssetExecutionContext):
    actor = f"dagster:{context.run.run_id}"
    register = context.resources.register.open()
    clients = Clients(client_factories(context.resources, write=True))
    con = duckdb.connect(str(context.resources.storage.warehouse_file()), read_only=True)
    try:
        result = run_check(con, SuppressionList(register), clients, actor=actor)
    except SuppressionKeyError as exc:
        raise Failure(describe(exc)) from None
    finally:
        con.close()
        clients.close()
        register.close()
    metadata = {
        "records_on_list": result.hits, "new_records": result.new_records, "persons": result.persons,
        "banned_again": result.rebanned, "new_cases": result.new_cases, "retried": result.retried,
        "failed_systems": result.failed_systems,
        "states": dict(result.states), "cases": result.case_ids,
    }
    context.log.info(f"suppression check: {result.new_records} new records of {result.persons} listed persons, "
                     f"{result.new_cases} new cases, {result.failed_systems} failed systems")
    if result.failed_systems:
        raise Failure(f"suppression check: {result.failed_systems} system bans failed (recorded in the cases; "
                      "tried again next night)", metadata=metadata)
    return MaterializeResult(metadata=metadata)
