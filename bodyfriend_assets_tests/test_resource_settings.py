"""The databases' settings are resource fields: a test (or another deployment) passes them, and the
UI's resource page names the environment variable a deployment reads, never its value."""

import dagster as dg
import pandas as pd
from dagster._core.remote_representation.external_data import ResourceConfigEnvVarSnap, RepositorySnap
from dagster._serdes import serialize_value

from bodyfriend_assets import settings
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataHubIOManager
from bodyfriend_assets_tests.conftest import scalar

SECRET = "pa55-w0rd"


def _url(url) -> str:
    return url.render_as_string(hide_password=False)


def test_resources_given_their_urls_run_without_the_environment(legacy_url, datahub_url, monkeypatch):
    """Production mode with no URL variable at all: an unset one would fail the run, naming it;
    the resources' own fields are all the run needs."""
    entry = load_catalog().by_name("b_major")
    lv0 = build_lv0_asset(entry)
    seed_legacy(legacy_url, rows=50, days=1, tables=[entry.qualified_name])
    monkeypatch.setenv(settings.ENV_VAR, "production")
    for var in (settings.LEGACY_URL_VAR, settings.DATAHUB_URL_VAR):
        monkeypatch.delenv(var, raising=False)

    @dg.asset(key=["lv1ex", "major_codes"], io_manager_key=DATAHUB_IO, deps=[lv0.key],
              metadata={"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn("code", "text")])})
    def major_codes() -> pd.DataFrame:
        return pd.DataFrame({"code": ["A", "B"]})

    datahub = DataHub(url=_url(datahub_url))
    result = dg.materialize(
        [lv0, major_codes], partition_key="2024-01-01",
        resources={"legacy": LegacyDatabase(url=_url(legacy_url)), "datahub": datahub,
                   DATAHUB_IO: DataHubIOManager(datahub=datahub)},
        selection=[lv0.key],
    )
    assert result.success
    assert scalar(datahub_url, "SELECT count(*) FROM lv0.b_major") > 0
    assert dg.materialize([major_codes], resources={DATAHUB_IO: DataHubIOManager(datahub=datahub)}).success
    assert scalar(datahub_url, "SELECT count(*) FROM lv1ex.major_codes") == 2


def test_the_ui_names_the_variables_a_deployment_reads_and_never_shows_their_values(monkeypatch):
    monkeypatch.setenv(settings.LEGACY_URL_VAR, f"mssql+pymssql://erp_user:{SECRET}@erp-host:1433/RENTAL")
    monkeypatch.setenv(settings.DATAHUB_URL_VAR, f"postgresql+psycopg2://hub_user:{SECRET}@hub-host:5432/datahub")
    datahub = DataHub.from_environment()
    defs = dg.Definitions(
        assets=[build_lv0_asset(load_catalog().by_name("b_major"))],
        resources={"legacy": LegacyDatabase.from_environment(), "datahub": datahub,
                   DATAHUB_IO: DataHubIOManager(datahub=datahub)},
    )

    snapshot = RepositorySnap.from_def(defs.get_repository_def())
    shown = serialize_value(snapshot)

    for secret in (SECRET, "erp_user", "erp-host", "hub_user", "hub-host"):
        assert secret not in shown
    by_name = {r.name: r for r in snapshot.resources}
    for name, var in (("legacy", settings.LEGACY_URL_VAR), ("datahub", settings.DATAHUB_URL_VAR)):
        assert by_name[name].configured_values["url"] == ResourceConfigEnvVarSnap(name=var)
    assert set(by_name[DATAHUB_IO].configured_values) >= {"chunk_bytes", "chunk_rows"}


def test_an_unset_variable_leaves_the_url_to_the_environment_at_connect_time(monkeypatch):
    monkeypatch.delenv(settings.DATAHUB_URL_VAR, raising=False)
    assert DataHub.from_environment().url is None


def test_the_embedded_data_hub_is_looked_for_once_per_process_however_often_it_is_resolved(monkeypatch):
    """In development every DataHub.engine() resolves the URL; the embedded server is asked
    whether the database exists (an admin connection) the first time only."""
    from bodyfriend_assets import embedded

    monkeypatch.delenv(settings.DATAHUB_URL_VAR, raising=False)
    monkeypatch.delenv(settings.ENV_VAR, raising=False)
    asked = []
    real = embedded.ensure_database
    monkeypatch.setattr(embedded, "ensure_database", lambda url: asked.append(url) or real(url))
    first = settings.datahub_url()
    assert scalar(first, "SELECT current_database()") == embedded.DATAHUB_DATABASE
    asked.clear()
    assert [settings.datahub_url() for _ in range(3)] == [first] * 3
    assert DataHub().database_url() == first
    assert asked == []
