"""The google sync, Dagster-free: what the asset in ``assets/google/assets.py`` runs."""
