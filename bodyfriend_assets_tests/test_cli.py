"""The documented commands, run as a user would run them: real processes, real databases."""

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bodyfriend_assets_tests.conftest import scalar

BIN = Path(sys.executable).parent


def _run(args, env, cwd=None, timeout=300):
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BODYFRIEND_LEGACY", "BODYFRIEND_DATAHUB", "DAGSTER_"))}
    env.update(extra)
    return env


def _yesterday_kst() -> str:
    return (datetime.now(ZoneInfo("Asia/Seoul")).date() - timedelta(days=1)).isoformat()


def test_demo_on_the_embedded_default_runs_every_layer_and_prints_summaries(tmp_path):
    yesterday = _yesterday_kst()
    out = _run([str(BIN / "bodyfriend"), "demo", "--rows", "1500"], _env(BODYFRIEND_HOME=str(tmp_path))).stdout
    days = {yesterday, _yesterday_kst()}  # the same, unless Seoul's midnight passed meanwhile
    assert re.search(r"launching daily_data_hub for partition (\S+)", out).group(1) in days
    assert re.search(r"run [0-9a-f-]{36} launched", out)
    table = out[out.index("lv0 table"):].split("\n" + "-" * 84 + "\n")[1]
    lines = table.strip().splitlines()
    assert len(lines) == 31 and not any("failed" in l for l in lines)
    rows = {l.split()[0]: int(l.split()[2].replace(",", "")) for l in lines}
    assert rows["b_major"] > 0 and rows["r_order_contract"] > 0
    layers = {l.split()[0]: l.split()[1:] for l in out[out.index("layer "):].splitlines()[1:] if l.split()[0] in ("lv0", "lv1", "lv1ex", "lv2", "hc")}
    assert layers["lv0"][0] == "31" and int(layers["lv1"][0]) >= 20 and int(layers["lv2"][0]) >= 10
    assert int(layers["lv2"][1].replace(",", "")) > 0
    # nothing was edited in Salesforce on a first night
    assert "Product2 sync-back: 0 fields of 0 products edited in Salesforce, in lv1.product2_salesforce_edits" in out
    assert layers["lv1ex"][0] == "4" and int(layers["lv1ex"][1].replace(",", "")) > 0  # new addresses refined
    # only warnings: one day of demo data has hc children whose parents are from earlier days,
    # held back in quarantine rather than written pointing at nothing
    checks_line = next(line for line in out.splitlines() if line.startswith("checks: "))
    assert all(name.endswith(":quarantine_count") for name in re.findall(r"'([^']+)'", checks_line)), checks_line
    # The summary's numbers are what landed in the embedded Data Hub.
    from bodyfriend_assets import embedded

    os.environ["BODYFRIEND_HOME"], previous = str(tmp_path), os.environ["BODYFRIEND_HOME"]
    try:
        embedded._server.cache_clear()
        hub = embedded.server_url(embedded.DATAHUB_DATABASE)
        assert scalar(hub, "SELECT count(*) FROM lv0.b_major") == rows["b_major"]
        # refined through the embedded geocoding stand-in: lot numbers found as they are,
        # apartments once their "101동 1203호" was dropped
        assert scalar(hub, "SELECT count(*) FROM lv1.address_master") == int(layers["lv1ex"][1].replace(",", ""))
        assert scalar(hub, "SELECT count(DISTINCT status) FROM lv1.address_master "
                           "WHERE status IN ('found', 'found_shortened')") == 2
        # incremental: the day's rows plus the look-back before it, all loaded by this one run
        assert scalar(hub, "SELECT count(*) FROM lv0.r_order_contract") == rows["r_order_contract"]
        # the seeded days end yesterday (KST), and the run was for yesterday
        assert scalar(hub, "SELECT max(_partition) FROM lv0.r_order_contract") in days
        assert scalar(hub, "SELECT count(*) FROM lv0.r_service_receipt WHERE dec_hand_tel_no LIKE '010-%'") > 0
    finally:
        embedded.stop_server()
        os.environ["BODYFRIEND_HOME"] = previous
        embedded._server.cache_clear()


def test_seed_writes_the_stand_in_where_the_legacy_url_points(legacy_url):
    url = legacy_url.render_as_string(hide_password=False)
    out = _run([str(BIN / "bodyfriend"), "seed", "--rows", "300", "--days", "3"], _env(BODYFRIEND_LEGACY_URL=url)).stdout
    assert "seeded 31 legacy tables" in out and "2024-01-01..2024-01-03 KST" in out  # the default start
    assert scalar(legacy_url, "SELECT count(*) FROM rental.r_order_contract") == 300
    assert str(scalar(legacy_url, "SELECT max(updt_dt)::date FROM rental.r_order_contract")) == "2024-01-03"


def test_seed_can_end_yesterday_or_start_on_a_given_day(legacy_url):
    url = legacy_url.render_as_string(hide_password=False)
    yesterday = _yesterday_kst()
    _run([str(BIN / "bodyfriend"), "seed", "--rows", "300", "--days", "3", "--end-yesterday"], _env(BODYFRIEND_LEGACY_URL=url))
    last = str(scalar(legacy_url, "SELECT max(updt_dt)::date FROM rental.r_order_contract"))
    assert last in {yesterday, _yesterday_kst()}
    out = _run([str(BIN / "bodyfriend"), "seed", "--rows", "300", "--days", "2", "--start", "2025-06-01"],
               _env(BODYFRIEND_LEGACY_URL=url)).stdout
    assert "2025-06-01..2025-06-02 KST" in out
    assert str(scalar(legacy_url, "SELECT min(updt_dt)::date FROM rental.r_order_contract")) == "2025-06-01"


def test_seed_refuses_a_sql_server_and_keeps_the_password_out_of_the_message():
    env = _env(BODYFRIEND_LEGACY_URL="mssql+pymssql://erp:S3cret-pw@erp.example:1433/RENTAL")
    done = subprocess.run([str(BIN / "bodyfriend"), "seed"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "SQL Server" in done.stderr and "S3cret-pw" not in done.stdout + done.stderr


def test_dagster_cli_materializes_a_partition_with_the_two_variables(platform_env, tmp_path):
    legacy_url, datahub_url = platform_env
    _run([str(BIN / "bodyfriend"), "seed", "--rows", "400"], dict(os.environ))
    out = _run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "bodyfriend_assets.definitions",
         "--select", "lv0/r_order_contract_add", "--partition", "2024-01-03"],
        dict(os.environ),
        cwd=Path(__file__).resolve().parent.parent,
    )
    out = out.stdout + out.stderr
    assert "RUN_SUCCESS" in out
    in_window = scalar(
        legacy_url,
        "SELECT count(*) FROM rental.r_order_contract_add "
        "WHERE updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04'",
    )
    assert in_window > 0
    assert scalar(datahub_url, "SELECT count(*) FROM lv0.r_order_contract_add WHERE _partition = '2024-01-03'") == in_window
    password = legacy_url.password
    assert not password or password not in out


def test_the_embedded_server_starts_for_whoever_runs_the_platform(tmp_path):
    """PostgreSQL refuses to run as root: as root, the wheel runs it as a system user of its own;
    as anyone else, as that user."""
    probe = (
        "from bodyfriend_assets import embedded, settings\n"
        "import sqlalchemy as sa\n"
        "url = settings.datahub_url()\n"
        "with sa.create_engine(url).connect() as c:\n"
        "    print('server', c.exec_driver_sql('select 1').scalar())\n"
        "import os\n"
        "pid = int((embedded.home() / 'pgdata' / 'postmaster.pid').read_text().split()[0])\n"
        "print('owner', os.stat(f'/proc/{pid}').st_uid)\n"
    )
    home = tmp_path / "home"
    out = _run([sys.executable, "-c", probe], _env(BODYFRIEND_HOME=str(home))).stdout
    assert "server 1" in out
    owner = int(out.split("owner ")[1].split()[0])
    assert owner != 0
    if os.geteuid() != 0:
        assert owner == os.geteuid()
