"""Telling the operators: mail through a configured SMTP server and an optional webhook (JSON
POST, for chat tools). What is sent: failed runs, deadlines and open manual tasks, stale
systems. Messages carry case ids, system names and counts, never a data subject's personal data.

The Dagster resource, ``NotifierResource``, is in ``assets/resources.py``; :mod:`.message` builds the notices.
"""

from contact_register.notify.message import Notice, scrub
from contact_register.notify.senders import NotifyError, SmtpSettings

__all__ = ["Notice", "NotifyError", "SmtpSettings", "scrub"]
