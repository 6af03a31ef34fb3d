"""Data-subject requests: the cases (``cases/``), the suppression list, and one folder
per right (export, erasure, marketing_ban, rectification, restriction, retention)
with the write-back contract they share (``writeback/``)."""
