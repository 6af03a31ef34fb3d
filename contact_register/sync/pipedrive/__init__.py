"""The pipedrive sync, Dagster-free: what the asset in ``assets/pipedrive/assets.py`` runs."""
