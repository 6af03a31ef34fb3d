"""Erasure (GDPR art. 17) in every system: one eraser per system (``registry.ERASERS``), the
per-field policy (``policy.yaml``), and the flow plan -> approval -> execution -> verification
(``flow.py``) that the ``erasure`` Dagster job runs."""
