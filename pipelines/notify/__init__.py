"""Telling the operators: mail through a configured SMTP server and an optional webhook (JSON
POST, for chat tools). What is sent: failed runs, deadlines and open manual tasks, stale
systems. Messages carry case ids, system names and counts, never a data subject's personal data.

:class:`NotifierResource` is the Dagster resource; :mod:`.message` builds the notices.
"""

from pipelines.notify.message import Notice, scrub
from pipelines.notify.senders import NotifierResource, NotifyError, SmtpSettings

__all__ = ["Notice", "NotifierResource", "NotifyError", "SmtpSettings", "scrub"]
