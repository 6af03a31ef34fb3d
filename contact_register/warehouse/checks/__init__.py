"""Checks that keep the warehouse honest: row counts against the published warehouse (a guard
that can stop a publish), each system's last successful sync, and whether what lands still
matches the privacy notice's register description. Results carry table and field names,
system names and counts, never personal data."""
