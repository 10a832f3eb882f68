"""Alerts: a real SMTP server on loopback (aiosmtpd) receives what the sensors send.

Real runs on a real Dagster instance (dagster-postgres), the sensors evaluated as the daemon does
(``evaluate_tick``, cursor carried from tick to tick), the Data Hub a real PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import subprocess
from datetime import datetime

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dagster._core.test_utils import freeze_time

from bodyfriend_assets import settings
from bodyfriend_assets.alerts import mail
from bodyfriend_assets.alerts.sensors import (
    build_failed_check_alert,
    build_run_failure_alert,
    build_stale_tables_alert,
)
from bodyfriend_assets.compat.completions import KST, blocking_checks_of
from bodyfriend_assets_tests.test_dag_log import instance, instance_url, utc  # noqa: F401

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="Asia/Seoul")
GOODS, ORDERS, PROMOTION = (dg.AssetKey(["lv0", n]) for n in ("r_goods", "r_order_contract", "r_promotion"))
PASSWORD = "s3cret-smtp-pass"


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == PASSWORD.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch, tmp_path):
    """A plain SMTP server on loopback, and the environment pointing at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    for var, value in {mail.HOST_VAR: "127.0.0.1", mail.PORT_VAR: str(port), mail.FROM_VAR: "dagster@bodyfriend.test",
                       mail.TO_VAR: "data-team@bodyfriend.test, oncall@bodyfriend.test",
                       mail.UI_URL_VAR: "http://dagster.bodyfriend.test:3000/"}.items():
        monkeypatch.setenv(var, value)
    yield inbox
    controller.stop()


@pytest.fixture
def tls_smtp(monkeypatch, tmp_path):
    """An SMTP server on loopback that requires STARTTLS (a certificate made for the test, trusted
    through SSL_CERT_FILE) and a login."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            auth_required=True, authenticator=inbox.authenticate)
    controller.start()
    for var, value in {mail.HOST_VAR: "127.0.0.1", mail.PORT_VAR: str(port), mail.FROM_VAR: "dagster@bodyfriend.test",
                       mail.TO_VAR: "data-team@bodyfriend.test", mail.USER_VAR: "alerts",
                       mail.PASSWORD_VAR: PASSWORD, "SSL_CERT_FILE": str(cert)}.items():
        monkeypatch.setenv(var, value)
    yield inbox
    controller.stop()


def tick(sensor, instance, cursor):
    """One evaluation as the daemon runs it: returns the cursor to carry to the next tick."""
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    return data.cursor


@dg.asset(key=GOODS, partitions_def=DAILY)
def goods_load_fails() -> None:
    raise RuntimeError("the ERP refused the connection")


@dg.asset(key=ORDERS, partitions_def=DAILY,
          check_specs=[dg.AssetCheckSpec("keys_unique_and_not_null", asset=ORDERS, blocking=True)])
def orders_with_duplicates() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
        passed=False, description="3 keys appear more than once in lv0.r_order_contract")])


@dg.asset(key=PROMOTION, partitions_def=DAILY,
          check_specs=[dg.AssetCheckSpec("keys_unique_and_not_null", asset=PROMOTION, blocking=True)])
def promotion_ok() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])


def test_a_failed_run_is_mailed_once_with_its_partition_error_and_link(instance, smtp):
    sensor = build_run_failure_alert()
    cursor = tick(sensor, instance, None)  # a first start begins at the latest event: no history
    result = dg.materialize([goods_load_fails], instance=instance, partition_key="2024-03-04", raise_on_error=False)
    assert not result.success
    cursor = tick(sensor, instance, cursor)
    [message] = smtp.messages
    assert message["Subject"] == "[bodyfriend] run failed: __ephemeral_asset_job__, partition 2024-03-04"
    assert message["To"] == "data-team@bodyfriend.test, oncall@bodyfriend.test"
    body = message.get_content()
    assert "Tables not written: lv0/r_goods" in body
    assert "Partition: 2024-03-04" in body
    assert "Step lv0__r_goods failed: RuntimeError: the ERP refused the connection" in body
    assert f"Run in the UI: http://dagster.bodyfriend.test:3000/runs/{result.run_id}" in body
    tick(sensor, instance, cursor)
    assert len(smtp.messages) == 1  # once


def test_a_failed_blocking_check_is_mailed_once_over_starttls_without_showing_the_password(instance, tls_smtp, capfd):
    sensor = build_failed_check_alert(blocking_checks_of([orders_with_duplicates]))
    cursor = tick(sensor, instance, None)
    dg.materialize([promotion_ok], instance=instance, partition_key="2024-03-04")
    result = dg.materialize([orders_with_duplicates], instance=instance, partition_key="2024-03-04", raise_on_error=False)
    assert not result.success  # the blocking check failed the step
    cursor = tick(sensor, instance, cursor)
    [message] = tls_smtp.messages
    assert tls_smtp.logins == [(b"alerts", PASSWORD.encode())]  # logged in, after STARTTLS (required)
    assert message["Subject"] == "[bodyfriend] blocking check failed: lv0/r_order_contract"
    body = message.get_content()
    assert "Table lv0/r_order_contract: blocking check keys_unique_and_not_null failed" in body
    assert "Partition: 2024-03-04" in body
    assert "Error: 3 keys appear more than once in lv0.r_order_contract" in body
    assert f"Run in the UI: http://localhost:3000/runs/{result.run_id}" in body
    assert "r_promotion" not in body  # its check passed
    tick(sensor, instance, cursor)
    assert len(tls_smtp.messages) == 1  # once
    logged = capfd.readouterr()
    assert "alert sent to 1 recipients: [bodyfriend] blocking check failed" in logged.err
    assert PASSWORD not in logged.out + logged.err and PASSWORD not in body


def test_tables_not_fresh_at_seven_kst_are_mailed_once_that_day(instance, smtp):
    now = [datetime(2024, 3, 5, 6, 59, tzinfo=KST).timestamp()]
    sensor = build_stale_tables_alert([GOODS, ORDERS, PROMOTION], blocking_checks_of([orders_with_duplicates, promotion_ok]),
                                      clock=lambda: now[0])
    # The night of 2024-03-04, run at 00:30 KST: promotion loads, orders fail their check, goods
    # never run.
    with freeze_time(datetime(2024, 3, 5, 0, 30, tzinfo=KST)):
        dg.materialize([promotion_ok], instance=instance, partition_key="2024-03-04")
        dg.materialize([orders_with_duplicates], instance=instance, partition_key="2024-03-04", raise_on_error=False)
    cursor = tick(sensor, instance, None)
    assert smtp.messages == []  # before the deadline
    now[0] += 120  # 07:01 KST
    cursor = tick(sensor, instance, cursor)
    [message] = smtp.messages
    assert message["Subject"] == "[bodyfriend] 2 tables not fresh at 07:00 KST on 2024-03-05"
    body = message.get_content()
    assert "Table lv0/r_goods, partition 2024-03-04:" in body and "never materialized" in body
    assert "Table lv0/r_order_contract, partition 2024-03-04:" in body
    assert "http://dagster.bodyfriend.test:3000/assets/lv0/r_order_contract" in body
    assert "r_promotion" not in body
    now[0] += 3600
    cursor = tick(sensor, instance, cursor)
    assert len(smtp.messages) == 1  # once a day


def test_without_smtp_in_development_an_alert_is_logged_as_skipped(instance, monkeypatch, capfd):
    monkeypatch.delenv(mail.HOST_VAR, raising=False)
    monkeypatch.setenv(settings.ENV_VAR, settings.DEVELOPMENT)
    sensor = build_run_failure_alert()
    cursor = tick(sensor, instance, None)
    dg.materialize([goods_load_fails], instance=instance, partition_key="2024-03-04", raise_on_error=False)
    tick(sensor, instance, cursor)  # no error
    assert "alert not sent (BODYFRIEND_SMTP_HOST is not set): [bodyfriend] run failed" in capfd.readouterr().err


def test_in_production_a_missing_smtp_host_is_an_error_naming_it(monkeypatch):
    monkeypatch.delenv(mail.HOST_VAR, raising=False)
    monkeypatch.setenv(settings.ENV_VAR, settings.PRODUCTION)
    with pytest.raises(settings.SettingsError, match="BODYFRIEND_SMTP_HOST is not set"):
        mail.send_alert(mail.Alert("s", "b"), logging.getLogger(__name__))


def test_an_unreachable_smtp_server_is_a_clear_error_without_the_password(monkeypatch):
    monkeypatch.setenv(mail.HOST_VAR, "127.0.0.1")
    monkeypatch.setenv(mail.PORT_VAR, str(free_port()))  # nothing listens there
    monkeypatch.setenv(mail.FROM_VAR, "a@b.test")
    monkeypatch.setenv(mail.TO_VAR, "c@d.test")
    monkeypatch.setenv(mail.USER_VAR, "alerts")
    monkeypatch.setenv(mail.PASSWORD_VAR, PASSWORD)
    with pytest.raises(mail.AlertDeliveryError, match="could not be sent through the SMTP server") as err:
        mail.send_alert(mail.Alert("[bodyfriend] test", "b"), logging.getLogger(__name__))
    assert PASSWORD not in str(err.value) and "127.0.0.1" not in str(err.value)
    assert PASSWORD not in repr(mail.mail_settings())


def test_a_mail_the_smtp_server_did_not_take_is_sent_by_the_next_tick_once(instance, smtp, monkeypatch):
    sensor = build_run_failure_alert()
    cursor = tick(sensor, instance, None)
    dg.materialize([goods_load_fails], instance=instance, partition_key="2024-03-04", raise_on_error=False)
    working_port = mail.mail_settings().port
    monkeypatch.setenv(mail.PORT_VAR, str(free_port()))  # the SMTP server is down
    with pytest.raises(mail.AlertDeliveryError):
        tick(sensor, instance, cursor)  # the tick fails: the daemon keeps the cursor it had
    monkeypatch.setenv(mail.PORT_VAR, str(working_port))
    cursor = tick(sensor, instance, cursor)
    [message] = smtp.messages
    assert message["Subject"] == "[bodyfriend] run failed: __ephemeral_asset_job__, partition 2024-03-04"
    tick(sensor, instance, cursor)
    assert len(smtp.messages) == 1
