"""BODYFRIEND_ENV=production: every connection setting required, nothing embedded ever started.

Each test runs in a BODYFRIEND_HOME of its own, so an embedded server started by mistake would
leave its ``pgdata`` folder there; the databases of the test server are listed before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from bodyfriend_assets import settings
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.conftest import rows

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PARTITION = "2024-01-03"
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("BODYFRIEND_HOME", str(home))
    return home


def _databases(pg_server_url) -> set[str]:
    return {name for (name,) in rows(pg_server_url.set(database="postgres"), "SELECT datname FROM pg_database")}


def _url(url) -> str:
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("missing", settings.CONNECTION_VARS)
def test_production_mode_names_a_missing_connection_setting_and_starts_nothing_embedded(
    missing, fresh_home, monkeypatch, make_database, pg_server_url
):
    given = {var: _url(make_database("set")) for var in settings.CONNECTION_VARS if var != missing}
    before = _databases(pg_server_url)
    monkeypatch.setenv(settings.ENV_VAR, "production")
    monkeypatch.delenv(missing, raising=False)
    for var, value in given.items():
        monkeypatch.setenv(var, value)
    resolve = {
        settings.LEGACY_URL_VAR: settings.legacy_url,
        settings.DATAHUB_URL_VAR: settings.datahub_url,
        settings.DAGSTER_PG_URL_VAR: settings.instance_storage_url,
    }
    with pytest.raises(settings.SettingsError) as raised:
        resolve[missing]()
    assert missing in str(raised.value) and "BODYFRIEND_ENV=production" in str(raised.value)
    with pytest.raises(settings.SettingsError, match=missing):
        settings.check_production_settings()
    assert not (fresh_home / "pgdata").exists()
    assert _databases(pg_server_url) == before


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )


def _production_env(home: Path, **variables) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "BODYFRIEND_"))}
    env.update(BODYFRIEND_HOME=str(home), BODYFRIEND_ENV="production", **variables)
    return env


def test_a_production_definitions_load_without_the_legacy_url_fails_naming_it(
    fresh_home, make_database, pg_server_url
):
    """The code location itself fails to load (what the UI shows), before anything connects."""
    hub, instance = _url(make_database("hub")), _url(make_database("dagster"))
    before = _databases(pg_server_url)
    env = _production_env(fresh_home, BODYFRIEND_DATAHUB_URL=hub, DAGSTER_PG_URL=instance)
    result = _cli(["definitions", "validate", "-m", "bodyfriend_assets.definitions"], env)
    assert result.returncode != 0
    assert "BODYFRIEND_LEGACY_URL is not set: BODYFRIEND_ENV=production" in result.stdout + result.stderr
    assert not (fresh_home / "pgdata").exists()
    assert _databases(pg_server_url) == before


def test_a_production_materialize_without_the_instance_database_fails_naming_it(
    fresh_home, make_database, pg_server_url, tmp_path
):
    """``dagster asset materialize`` on the project's dagster.yaml: the instance refuses to start."""
    legacy, hub = _url(make_database("legacy")), _url(make_database("hub"))
    before = _databases(pg_server_url)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = _production_env(
        fresh_home, BODYFRIEND_LEGACY_URL=legacy, BODYFRIEND_DATAHUB_URL=hub, DAGSTER_HOME=str(dagster_home),
    )
    result = _cli(
        ["asset", "materialize", "-m", "bodyfriend_assets.definitions", "--select", "lv0/b_major",
         "--partition", PARTITION],
        env,
    )
    assert result.returncode != 0
    assert "DAGSTER_PG_URL is not set: BODYFRIEND_ENV=production" in result.stdout + result.stderr
    assert not (fresh_home / "pgdata").exists()
    assert _databases(pg_server_url) == before


def test_a_production_run_that_lost_a_setting_fails_at_once_naming_it(fresh_home, monkeypatch, make_database):
    """Definitions loaded, the variable gone when the run connects: the step fails naming it,
    with no retry and no embedded stand-in seeded in its place."""
    monkeypatch.setenv(settings.ENV_VAR, "production")
    monkeypatch.delenv(settings.LEGACY_URL_VAR, raising=False)
    monkeypatch.setenv(settings.DATAHUB_URL_VAR, _url(make_database("hub")))
    monkeypatch.setenv(settings.DAGSTER_PG_URL_VAR, _url(make_database("dagster")))
    asset = build_lv0_asset(load_catalog().by_name("b_major"))
    result = dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    failures = [str(e.event_specific_data.error) for e in result.all_events
                if e.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RESOURCE_INIT_FAILURE)]
    assert failures and "BODYFRIEND_LEGACY_URL is not set: BODYFRIEND_ENV=production" in failures[0]
    assert not (fresh_home / "pgdata").exists()


def test_the_run_log_says_which_mode_runs_and_where_without_user_or_password(platform_env, monkeypatch):
    legacy_url, datahub_url = platform_env
    entry = load_catalog().by_name("b_major")
    seed_legacy(legacy_url, rows=50, days=1, tables=[entry.qualified_name])
    for mode in ("production", "development"):
        monkeypatch.setenv(settings.ENV_VAR, mode)
        with dg.instance_for_test() as instance:
            result = dg.materialize([build_lv0_asset(entry)], partition_key=PARTITION, resources=RESOURCES,
                                    instance=instance)
            messages = [record.user_message for record in instance.all_logs(result.run_id)]
        for what, url in (("legacy ERP", legacy_url), ("Data Hub", datahub_url)):
            expected = f"BODYFRIEND_ENV={mode}: {what} at {settings.describe_url(url)}"
            assert any(expected in m for m in messages), messages


def test_an_unknown_mode_is_an_error_naming_the_variable(monkeypatch, fresh_home):
    monkeypatch.setenv(settings.ENV_VAR, "prod")
    with pytest.raises(settings.SettingsError, match="BODYFRIEND_ENV must be one of development, production"):
        settings.legacy_url()
    assert not (fresh_home / "pgdata").exists()
