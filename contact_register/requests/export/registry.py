"""Every system's subject-export reader, by system name: the one explicit table of them.
A processor of register.yaml with no exporter here is answered by a manual task."""

from __future__ import annotations

from contact_register.requests.export.exporters import (Exporter, GoogleExporter, NetvisorExporter, PipedriveExporter,
    RequestTrackerExporter)
from contact_register.requests.export.exporters_small import DocueExporter, MatomoExporter, TrustmaryExporter

EXPORTERS: dict[str, Exporter] = {exporter.system: exporter for exporter in (
    PipedriveExporter(),
    GoogleExporter(),
    NetvisorExporter(),
    RequestTrackerExporter(),
    TrustmaryExporter(),
    MatomoExporter(),
    DocueExporter(),
)}
