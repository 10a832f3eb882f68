"""Retries that ride out an outage, fail at once on what waiting cannot fix, and give up on a hung
server by its timeouts.

The outages are real: a TCP port on 127.0.0.1 that refuses connections until a forwarder to the
test's PostgreSQL server starts listening on it, a listener that accepts and never answers, a
login the server refuses, a lock that holds a query past its statement timeout. The backoff is
shrunk through its environment variables (``retries``), never by patching code.
"""

from __future__ import annotations

import re
import socket
import threading
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import retries, settings
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_assets, lv0_key
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.conftest import rows
from bodyfriend_assets_tests.daemon import messages, run_group, running_daemon, step_retries, write_dagster_home

PARTITION = "2024-01-03"
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}
OLD_RETRIES = 3  # 30, 60 and 120 s: the old backoff gave up after four minutes
WAIT = re.compile(r"database connection failed \((\w+): ([^)]*)\); retry (\d+) of (\d+) in")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_address(url) -> tuple[int, object]:
    """Where the test's PostgreSQL server listens: a TCP address, or the embedded Unix socket."""
    if url.host:
        return socket.AF_INET, (url.host, url.port or 5432)
    return socket.AF_UNIX, f"{url.query['host']}/.s.PGSQL.{url.port or 5432}"


class Forwarder:
    """127.0.0.1:``port`` forwarded to the test's PostgreSQL server, once ``start`` is called:
    before that nothing listens there and every connection is refused."""

    def __init__(self, server_url, port: int):
        self.family, self.target = _server_address(server_url)
        self.port = port
        self.listener: socket.socket | None = None

    def start(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(self.family, socket.SOCK_STREAM)
            server.connect(self.target)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        if self.listener:
            self.listener.close()


class SilentServer:
    """A hung server: accepts connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                return

    def stop(self):
        self.listener.close()
        for s in self.accepted:
            s.close()


def _url(url) -> str:
    return url.render_as_string(hide_password=False)


def _over_tcp(url, port: int):
    """``url`` reached through 127.0.0.1:``port`` (the user and database kept)."""
    return url.set(host="127.0.0.1", port=port, query={})


def _backoff(monkeypatch, first: float, cap: float, window: float):
    monkeypatch.setenv(retries.FIRST_DELAY_VAR, str(first))
    monkeypatch.setenv(retries.MAX_DELAY_VAR, str(cap))
    monkeypatch.setenv(retries.WINDOW_VAR, str(window))


def _waits(log: list[str]) -> list[tuple[str, str, int, int]]:
    return [(m[1], m[2], int(m[3]), int(m[4])) for m in map(WAIT.search, log) if m]


@pytest.fixture
def b_major(platform_env):
    legacy_url, _ = platform_env
    entry = load_catalog().by_name("b_major")
    seed_legacy(legacy_url, rows=50, days=1, tables=[entry.qualified_name])
    return entry


def test_the_backoff_covers_two_hours_by_default_doubling_up_to_ten_minutes():
    delays = retries.retry_delays()
    assert delays[:6] == [30, 60, 120, 240, 480, 600]
    assert set(delays[5:-1]) == {600} and sum(delays) == 7200  # the last wait ends the window


@pytest.mark.parametrize("number, message, cause, transient", [
    # pymssql's errors as FreeTDS words them (the first three as pymssql raised them here; the
    # login failure as reported in pymssql's issue tracker, #804)
    (20009, "DB-Lib error message 20009, severity 9:\nUnable to connect: Adaptive Server is unavailable or "
            "does not exist (10.0.0.5)\nNet-Lib error during Connection refused (111)\n", "connection refused", True),
    (20009, "DB-Lib error message 20009, severity 9:\nUnable to connect: TDS server is unavailable or does "
            "not exist (erp.invalid)\n", "unknown host", False),
    (20009, "DB-Lib error message 20003, severity 6:\nTDS server connection timed out (10.0.0.5)\nOperating "
            "System error during Operation now in progress (115)\nDB-Lib error message 20002, severity 9:\n"
            "TDS server connection failed (10.0.0.5)\n", "timeout", True),
    (18456, "Login failed for user 'erp'.DB-Lib error message 20018, severity 14:\nGeneral SQL Server error: "
            "Check messages from the SQL Server\nDB-Lib error message 20002, severity 9:\nAdaptive Server "
            "connection failed (erp)\n", "login refused (user or password)", False),
])
def test_sql_server_connection_errors_are_classified_by_their_numbers(number, message, cause, transient):
    import pymssql

    fault = retries.classify(sa.exc.OperationalError("connect", {}, pymssql.OperationalError(number, message.encode())))
    assert (fault.error_type, fault.cause, fault.transient) == ("OperationalError", cause, transient)
    assert "erp" not in str(fault) and "10.0.0.5" not in str(fault)


def test_a_source_outage_longer_than_the_old_backoff_is_ridden_out(b_major, platform_env, pg_server_url, monkeypatch):
    """The ERP refuses connections through more retries than the old backoff had; the step keeps
    waiting, logs each wait with its cause and a true count, and loads once the ERP is back."""
    legacy_url, datahub_url = platform_env
    _backoff(monkeypatch, first=0.2, cap=1, window=120)
    forwarder = Forwarder(pg_server_url, free_port())
    monkeypatch.setenv(settings.LEGACY_URL_VAR, _url(_over_tcp(legacy_url, forwarder.port)))
    outage_retries = OLD_RETRIES + 2
    with dg.instance_for_test() as instance:
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.update(result=dg.materialize(
            [build_lv0_asset(b_major)], partition_key=PARTITION, resources=RESOURCES,
            instance=instance, raise_on_error=False)))
        runner.start()
        try:
            def retried_enough():
                runs = instance.get_runs(limit=1)
                return runs and step_retries(instance, runs[0].run_id) >= outage_retries

            while not retried_enough() and runner.is_alive():
                runner.join(0.2)
            forwarder.start()  # the ERP is back
            runner.join()
        finally:
            forwarder.stop()
        result = outcome["result"]
        log = messages(instance, result.run_id)
    assert result.success
    waits = _waits(log)
    assert len(waits) >= outage_retries
    total = len(retries.retry_delays())
    assert waits == [("OperationalError", "connection refused", n, total) for n in range(1, len(waits) + 1)]
    assert rows(datahub_url, "SELECT count(*) FROM lv0.b_major")[0][0] == rows(
        legacy_url, f"SELECT count(*) FROM {b_major.source_schema}.b_major")[0][0]


def _failed(result) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events
                     if e.event_type == dg.DagsterEventType.STEP_FAILURE)


def test_a_refused_login_fails_at_once_without_a_retry(b_major, platform_env, monkeypatch):
    legacy_url, _ = platform_env
    _backoff(monkeypatch, first=0.2, cap=1, window=60)
    monkeypatch.setenv(settings.LEGACY_URL_VAR, _url(legacy_url.set(username="no_such_erp_user", password="x")))
    result = dg.materialize([build_lv0_asset(b_major)], partition_key=PARTITION, resources=RESOURCES,
                            raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    failure = _failed(result)
    assert "login refused (user or password)); not retried" in failure
    assert "no_such_erp_user" not in failure


@pytest.mark.parametrize("hung", ["legacy SQL Server", "Data Hub"])
def test_a_hung_server_fails_by_its_connect_timeout(hung, b_major, platform_env, monkeypatch):
    """A server that accepts and never answers: each try ends at the connect (login) timeout, and
    the step fails once its (shrunk) retry window is spent, naming the timeout."""
    legacy_url, datahub_url = platform_env
    silent = SilentServer()
    monkeypatch.setenv(settings.CONNECT_TIMEOUT_VAR, "2")
    _backoff(monkeypatch, first=0.1, cap=0.1, window=0.2)
    if hung == "Data Hub":
        monkeypatch.setenv(settings.DATAHUB_URL_VAR, _url(_over_tcp(datahub_url, silent.port)))
    else:
        monkeypatch.setenv(settings.LEGACY_URL_VAR, f"mssql+pymssql://erp_user:pw@127.0.0.1:{silent.port}/RENTAL")
    try:
        with dg.instance_for_test() as instance:
            result = dg.materialize([build_lv0_asset(b_major)], partition_key=PARTITION, resources=RESOURCES,
                                    instance=instance, raise_on_error=False)
            log = messages(instance, result.run_id)
    finally:
        silent.stop()
    assert not result.success
    assert [cause for _, cause, _, _ in _waits(log)] == ["timeout", "timeout"]
    assert "timeout) after 2 retries" in _failed(result)
    assert len(silent.accepted) >= 3  # every try reached the server and gave up waiting on it


def test_a_query_held_past_the_statement_timeout_fails_without_retry(b_major, platform_env, monkeypatch):
    legacy_url, _ = platform_env
    monkeypatch.setenv(settings.STATEMENT_TIMEOUT_VAR, "1")
    _backoff(monkeypatch, first=0.2, cap=1, window=60)
    blocker = sa.create_engine(legacy_url)
    try:
        with blocker.connect() as conn:
            conn.execute(sa.text(f"LOCK TABLE {b_major.source_schema}.b_major IN ACCESS EXCLUSIVE MODE"))
            result = dg.materialize([build_lv0_asset(b_major)], partition_key=PARTITION, resources=RESOURCES,
                                    raise_on_error=False)
            conn.rollback()
    finally:
        blocker.dispose()
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert "statement timeout (the query ran too long)); not retried" in _failed(result)


# -- run retries, with the daemon --------------------------------------------------------------


@pytest.mark.timeout(1800)  # four runs, each launched by the CLI through the daemon: slow on a busy machine
def test_the_daemon_relaunches_a_run_after_a_connection_fault_but_not_after_bad_data_or_a_refused_login(
    platform_env, make_database, pg_server_url, tmp_path
):
    """On the project's dagster.yaml: a run whose step spent its connection retries is relaunched
    and completes once the ERP is back; a run that failed on a missing source table, or on a login
    the ERP refuses, is not relaunched and its step was not retried."""
    legacy_url, datahub_url = platform_env
    entry = load_catalog().by_name("r_goods")
    # the nightly job's lv0 step that loads r_goods
    step = next(a.op.name for a in lv0_assets(load_catalog()) if lv0_key(entry) in a.keys)
    role = f"erp_reader_{uuid.uuid4().hex[:8]}"
    admin = pg_server_url.set(database="postgres")
    rows(admin, f'CREATE ROLE "{role}" LOGIN SUPERUSER PASSWORD \'reader\'')
    # The ERP database does not exist yet: every connection fails until it is created.
    _admin(admin, f'DROP DATABASE "{legacy_url.database}"')
    dagster_home = write_dagster_home(tmp_path / "dagster_home")
    try:
        with running_daemon(
            dagster_home, tmp_path,
            BODYFRIEND_LEGACY_URL=_url(legacy_url.set(username=role, password="reader")),
            BODYFRIEND_DATAHUB_URL=_url(datahub_url),
            DAGSTER_PG_URL=_url(make_database("dagster")),
            **{retries.FIRST_DELAY_VAR: "0.5", retries.MAX_DELAY_VAR: "2", retries.WINDOW_VAR: "4"},
        ) as daemon:
            # 1. a connection fault outlasting the step's retries: the run is relaunched
            first = daemon.launch("2024-01-03", step)
            failed = daemon.wait_for_end(first)
            assert failed.status == dg.DagsterRunStatus.FAILURE
            _admin(admin, f'CREATE DATABASE "{legacy_url.database}"')
            seed_legacy(legacy_url, rows=50, days=5)
            relaunched = daemon.wait_until(
                "a relaunch of the run to succeed",
                lambda i: [r for r in run_group(i, first) if r.status == dg.DagsterRunStatus.SUCCESS],
            )[0]
            with daemon.instance() as instance:
                assert step_retries(instance, first) == len(_delays(daemon.env))
                assert instance.get_run_by_id(first).tags["dagster/will_retry"] == "true"
            assert relaunched.parent_run_id is not None and relaunched.tags["dagster/retry_number"] in ("1", "2")
            assert rows(datahub_url, "SELECT count(*) FROM lv0.r_goods")[0][0] > 0

            # 2. bad data (a source table gone): failed at once, not relaunched
            rows(legacy_url, f"DROP TABLE {entry.source_schema}.r_goods")
            bad_data = daemon.launch("2024-01-04", step)
            _assert_not_relaunched(daemon, bad_data, "R_GOODS not found")

            # 3. a login the ERP refuses: failed at once, not relaunched
            rows(admin, f'ALTER ROLE "{role}" NOLOGIN')
            refused = daemon.launch("2024-01-05", step)
            _assert_not_relaunched(daemon, refused, "login refused")
            # The daemon relaunched the first run within seconds of its failure; by now it has
            # seen the other two failures, and relaunched neither.
            with daemon.instance() as instance:
                for run_id in (bad_data, refused):
                    assert [r.run_id for r in run_group(instance, run_id)] == [run_id]
    finally:
        rows(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        rows(admin, f'DROP OWNED BY "{role}" CASCADE')
        rows(admin, f'DROP ROLE "{role}"')


def _admin(url, sql: str) -> None:
    """A statement that cannot run in a transaction (CREATE/DROP DATABASE), on the server."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _delays(env) -> list[float]:
    with pytest.MonkeyPatch.context() as patch:
        for var in (retries.FIRST_DELAY_VAR, retries.MAX_DELAY_VAR, retries.WINDOW_VAR):
            patch.setenv(var, env[var])
        return retries.retry_delays()


def _assert_not_relaunched(daemon, run_id: str, reason: str) -> None:
    """Failed at once, and marked for the daemon as not to be relaunched (``dagster/will_retry``
    is what the daemon's run retries act on)."""
    run = daemon.wait_for_end(run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    with daemon.instance() as instance:
        assert step_retries(instance, run_id) == 0
        assert instance.get_run_by_id(run_id).tags["dagster/will_retry"] == "false"
        assert any(reason in m for m in messages(instance, run_id)), messages(instance, run_id)
