"""The netvisor sync, Dagster-free: what the asset in ``assets/netvisor/assets.py`` runs."""
