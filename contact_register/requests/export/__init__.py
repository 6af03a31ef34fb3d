"""The subject export (GDPR art. 15): the person's records from the warehouse and each
system's live reads (``registry.EXPORTERS``), packed with the report into one zip.
The ``subject_export`` Dagster job runs it."""
