"""Alert e-mails over SMTP, configured from the environment.

- ``BODYFRIEND_SMTP_HOST``, ``BODYFRIEND_SMTP_PORT`` (default 587), ``BODYFRIEND_ALERT_FROM``,
  ``BODYFRIEND_ALERT_TO`` (comma-separated addresses);
- ``BODYFRIEND_SMTP_USER`` / ``BODYFRIEND_SMTP_PASSWORD`` (optional; log in when a user is set);
- ``BODYFRIEND_SMTP_STARTTLS`` (``true``/``false``, default ``true`` when a user is set: a
  password is never sent in clear text unless this says ``false``); the server's certificate is
  verified against the system's CAs (or the file ``SSL_CERT_FILE`` names);
- ``BODYFRIEND_UI_URL``: the Dagster UI's address, for the links in the mails (default
  ``http://localhost:3000``).

In development an unset ``BODYFRIEND_SMTP_HOST`` means "no mail": the alert is logged as skipped.
In production (``BODYFRIEND_ENV=production``) it is an error naming the variable, so the alert
sensor's tick fails (shown on its page) and the alert is sent once the variable is set, rather
than a failed night going unreported. The password is only ever handed to ``smtplib``; it is not
in any message, log or exception raised here.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from bodyfriend_assets import settings

HOST_VAR = "BODYFRIEND_SMTP_HOST"
PORT_VAR = "BODYFRIEND_SMTP_PORT"
FROM_VAR = "BODYFRIEND_ALERT_FROM"
TO_VAR = "BODYFRIEND_ALERT_TO"
USER_VAR = "BODYFRIEND_SMTP_USER"
PASSWORD_VAR = "BODYFRIEND_SMTP_PASSWORD"
STARTTLS_VAR = "BODYFRIEND_SMTP_STARTTLS"
UI_URL_VAR = "BODYFRIEND_UI_URL"
DEFAULT_PORT = 587
DEFAULT_UI_URL = "http://localhost:3000"
TIMEOUT_SECONDS = 30
_POLICY = policy.SMTP.clone(max_line_length=998)  # RFC 5322's limit: subjects are not folded


class AlertDeliveryError(RuntimeError):
    """An alert could not be handed to the SMTP server (the message never holds the password)."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False


def _env(var: str) -> str:
    return os.environ.get(var, "").strip()


def mail_settings() -> MailSettings | None:
    """The SMTP settings, or None in development when no SMTP host is set."""
    host = _env(HOST_VAR)
    if not host:
        if settings.mode() == settings.PRODUCTION:
            raise settings.SettingsError(
                f"{HOST_VAR} is not set: {settings.ENV_VAR}={settings.PRODUCTION} sends its alerts by "
                f"e-mail and needs {HOST_VAR}, {FROM_VAR} and {TO_VAR}"
            )
        return None
    for var in (FROM_VAR, TO_VAR):
        if not _env(var):
            raise settings.SettingsError(f"{var} is not set: {HOST_VAR} is, and alerts need a sender and recipients")
    recipients = tuple(a.strip() for a in _env(TO_VAR).split(",") if a.strip())
    try:
        port = int(_env(PORT_VAR) or DEFAULT_PORT)
    except ValueError:
        raise settings.SettingsError(f"{PORT_VAR} must be a port number (got {_env(PORT_VAR)!r})") from None
    user = _env(USER_VAR) or None
    starttls_text = _env(STARTTLS_VAR).lower()
    if starttls_text not in ("", "true", "false"):
        raise settings.SettingsError(f"{STARTTLS_VAR} must be true or false (got {starttls_text!r})")
    starttls = starttls_text == "true" if starttls_text else user is not None
    return MailSettings(host, port, _env(FROM_VAR), recipients, user, os.environ.get(PASSWORD_VAR) or None, starttls)


def ui_url(path: str) -> str:
    """An address in the Dagster UI, e.g. ``ui_url("runs/<id>")``."""
    return (_env(UI_URL_VAR) or DEFAULT_UI_URL).rstrip("/") + "/" + path.lstrip("/")


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str


def send_alert(alert: Alert, log) -> bool:
    """Mail ``alert`` to the configured recipients; returns False when mail is not configured
    (development), after logging the alert as skipped."""
    config = mail_settings()
    if config is None:
        log.info(f"alert not sent ({HOST_VAR} is not set): {alert.subject}")
        return False
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = alert.subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message.set_content(alert.body)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS) as smtp:
            if config.starttls:  # the server's certificate is verified (SSL_CERT_FILE may name a CA)
                smtp.starttls(context=ssl.create_default_context())
            if config.user:
                smtp.login(config.user, config.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as err:
        # smtplib's errors carry the server's reply, never the password; still, only its class
        # and code are shown.
        code = getattr(err, "smtp_code", None)
        raise AlertDeliveryError(
            f"the alert {alert.subject!r} could not be sent through the SMTP server at {HOST_VAR} "
            f"port {config.port}: {type(err).__name__}{f' {code}' if code else ''}"
        ) from None
    log.info(f"alert sent to {len(config.recipients)} recipients: {alert.subject}")
    return True
