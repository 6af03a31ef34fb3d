"""The request_tracker sync, Dagster-free: what the asset in ``assets/request_tracker/assets.py`` runs."""
