"""Alerts: e-mails when the night fails (a run, a blocking check) or a table is stale at 07:00 KST.

:mod:`.mail` sends them over SMTP (settings from the environment); :mod:`.sensors` decides what
to send, once per event.
"""

from bodyfriend_assets.alerts.sensors import build_alert_sensors

__all__ = ["build_alert_sensors"]
