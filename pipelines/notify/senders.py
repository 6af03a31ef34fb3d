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

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

import requests
from dagster import ConfigurableResource

from pipelines.notify.message import Notice, scrub

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


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


def _flag(value: str, name: str) -> bool:
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise NotifyError(f"{name} must be true or false")


def _addresses(value: str, name: str) -> tuple[str, ...]:
    found = tuple(addr for _, addr in getaddresses([value]) if addr)
    if not found or any("@" not in a for a in found):
        raise NotifyError(f"{name} must be one or more email addresses, separated by commas")
    return found


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


class NotifierResource(ConfigurableResource):
    """Where notices go. Empty fields fall back to the ``NOTIFY_*`` environment variables
    (see the module docstring) when a notice is sent."""

    smtp_host: str = ""
    smtp_port: int = 0
    smtp_starttls: str = ""
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = ""
    recipients: str = ""
    smtp_ca_file: str = ""
    webhook_url: str = ""

    def _get(self, value, env: str, default: str = "") -> str:
        return str(value) if value else os.environ.get(env, default).strip()

    def smtp(self) -> SmtpSettings | None:
        """The mail settings, or None when no mail server is configured."""
        host = self._get(self.smtp_host, "NOTIFY_SMTP_HOST")
        if not host:
            return None
        port_text = self._get(self.smtp_port, "NOTIFY_SMTP_PORT", "587")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise NotifyError("NOTIFY_SMTP_PORT must be a port number")
        sender = self._get(self.sender, "NOTIFY_FROM")
        recipients = self._get(self.recipients, "NOTIFY_TO")
        if not sender or not recipients:
            raise NotifyError("mail needs NOTIFY_FROM and NOTIFY_TO besides NOTIFY_SMTP_HOST")
        return SmtpSettings(
            host=host, port=int(port_text), sender=_addresses(sender, "NOTIFY_FROM")[0],
            recipients=_addresses(recipients, "NOTIFY_TO"),
            starttls=_flag(self._get(self.smtp_starttls, "NOTIFY_SMTP_STARTTLS", "true"), "NOTIFY_SMTP_STARTTLS"),
            user=self._get(self.smtp_user, "NOTIFY_SMTP_USER"),
            password=self.smtp_password or os.environ.get("NOTIFY_SMTP_PASSWORD", ""),
            ca_file=self._get(self.smtp_ca_file, "NOTIFY_SMTP_CA_FILE"),
        )

    def webhook(self) -> str:
        return self._get(self.webhook_url, "NOTIFY_WEBHOOK_URL")

    def send(self, notice: Notice) -> list[str]:
        """Deliver through every configured channel; returns the channels used (empty when none
        is configured). One failing channel does not stop the other; then NotifyError."""
        used, errors = [], []
        settings, url = self.smtp(), self.webhook()
        if settings is not None:
            try:
                send_mail(settings, notice)
                used.append("mail")
            except NotifyError as exc:
                errors.append(str(exc))
        if url:
            try:
                post_webhook(url, notice)
                used.append("webhook")
            except NotifyError as exc:
                errors.append(str(exc))
        if errors:
            raise NotifyError("; ".join(errors) + (f" (delivered by {', '.join(used)})" if used else ""))
        return used
