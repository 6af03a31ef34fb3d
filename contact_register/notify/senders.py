"""Delivery: SMTP (standard library ``smtplib``/``email``) and an optional webhook (JSON POST).

Settings come from the environment when a notice is sent, like the register's: an
installation without mail configured still loads, and passwords never enter Dagster's storage.

- ``NOTIFY_SMTP_HOST``, ``NOTIFY_SMTP_PORT`` (default 587), ``NOTIFY_SMTP_STARTTLS`` (default
  true; ``false`` for a relay on the same host), ``NOTIFY_SMTP_USER`` / ``NOTIFY_SMTP_PASSWORD``
  (optional), ``NOTIFY_SMTP_CA_FILE`` (optional: a private CA that signed the server's
  certificate), ``NOTIFY_FROM``, ``NOTIFY_TO`` (comma-separated recipients);
- ``NOTIFY_WEBHOOK_URL`` (optional): a JSON POST with ``text``, ``kind``, ``subject``, ``facts``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import requests

from contact_register.notify.message import Notice, scrub


class NotifyError(RuntimeError):
    """A notice could not be delivered (the message says through which channel and why)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    user: str = ""
    password: str = ""
    ca_file: str = ""
    timeout_s: float = 20.0


def send_mail(settings: SmtpSettings, notice: Notice) -> None:
    msg = EmailMessage()
    msg["Subject"] = notice.full_subject()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[-1].strip(">"))
    msg["X-Contact-Register-Notice"] = notice.kind
    msg.set_content(notice.text())
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.ca_file or None))
                smtp.ehlo()
            if settings.user:
                smtp.login(settings.user, settings.password)
            refused = smtp.send_message(msg, from_addr=settings.sender, to_addrs=list(settings.recipients))
    except (smtplib.SMTPException, OSError) as exc:
        # A refusal quotes the addresses it refused (SMTPRecipientsRefused, SMTPSenderRefused):
        # keep the server's reason, blank the addresses.
        raise NotifyError(f"mail through {settings.host}:{settings.port} failed: "
                          f"{type(exc).__name__}: {scrub(str(exc))}") from exc
    if refused:
        raise NotifyError(f"the mail server refused {len(refused)} of {len(settings.recipients)} recipients")


def post_webhook(url: str, notice: Notice, timeout_s: float = 15.0) -> None:
    try:
        resp = requests.post(url, json=notice.payload(), timeout=(5.0, timeout_s))
    except requests.RequestException as exc:
        # The URL itself is a secret for most chat tools: never repeat it.
        raise NotifyError(f"webhook failed: {type(exc).__name__}") from exc
    if resp.status_code >= 300:
        raise NotifyError(f"webhook answered HTTP {resp.status_code}")
