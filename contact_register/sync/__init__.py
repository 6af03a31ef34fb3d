"""Per-system sync into the raw stores (``raw_store.py``: one DuckDB file per system),
Dagster-free; the assets in ``assets/<system>/`` run it."""
