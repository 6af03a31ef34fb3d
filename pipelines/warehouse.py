"""The warehouse area of the code location: the published warehouse, the suppression check
that follows it, and the asset checks on the syncs and the warehouse."""

from dagster import Definitions

from assets.checks.asset_checks import last_sync, notice_conformance
from assets.suppression.assets import suppression_check
from assets.warehouse.assets import warehouse

defs = Definitions(
    assets=[warehouse, suppression_check],
    asset_checks=[last_sync, notice_conformance],
)
