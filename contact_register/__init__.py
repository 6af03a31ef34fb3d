"""The Dagster-free core of the contact register: sync per system, the warehouse and
identity, the data-subject requests (cases, suppression, one folder per right),
notifications and the operator command line. Imports connectors only, never Dagster."""
