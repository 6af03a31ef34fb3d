"""The warehouse: built from the raw stores (``build.py``, SQL in ``sql/``), identity
resolution, the checks that keep it honest, and the atomic publish. Dagster-free; the
asset is ``assets/warehouse/assets.py``."""
