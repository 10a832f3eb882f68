"""No password, ERP host or ERP user in Dagster's storage, whatever the driver says.

Runs go through the real ``dagster asset materialize`` on the project's dagster.yaml (PostgreSQL
instance storage, compute logs under DAGSTER_HOME) with a legacy URL whose password holds an
unencoded ``@`` and whose user and host are distinctive. Then every table of the instance
database is dumped as text, and every file under DAGSTER_HOME (the compute logs) read, and none
of them may hold the password, the user or the host, or a piece of the password.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from bodyfriend_assets import retries
from bodyfriend_assets_tests.daemon import write_dagster_home
from bodyfriend_assets_tests.test_retries import free_port
from bodyfriend_assets_tests.test_ui_path import PROJECT_ROOT

USER = "bf_erp_reader_q7x"
PASSWORD = "Sx9@k2!Lm@Qr"  # two unencoded @: the URL's host would otherwise start inside it
HOST = "erp-prod-q7x.internal.invalid"
SECRETS = [USER, PASSWORD, HOST, "Sx9", "k2!Lm", "Qr@", "@Qr", "erp-prod-q7x"]


def _materialize(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "bodyfriend_assets.definitions",
         "--select", "lv0/b_major", "--partition", "2024-01-03"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def _storage_as_text(instance_url) -> str:
    """Every row of every table of the instance database, as text."""
    engine = sa.create_engine(instance_url)
    dump = []
    try:
        with engine.connect() as conn:
            preparer = engine.dialect.identifier_preparer
            tables = conn.execute(sa.text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
            )).all()
            assert len(tables) > 10, tables
            for schema, table in tables:
                name = f"{preparer.quote(schema)}.{preparer.quote(table)}"
                dump += conn.execute(sa.text(f"SELECT t::text FROM {name} AS t")).scalars().all()
    finally:
        engine.dispose()
    return "\n".join(dump)


def _files_as_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_no_password_user_or_host_of_the_erp_reaches_dagster_storage_or_compute_logs(
    platform_env, make_database, tmp_path
):
    _, datahub_url = platform_env
    instance_url = make_database("dagster")
    dagster_home = write_dagster_home(tmp_path / "dagster_home")
    base = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    base.update(
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_PG_URL=instance_url.render_as_string(hide_password=False),
        BODYFRIEND_DATAHUB_URL=datahub_url.render_as_string(hide_password=False),
        **{retries.FIRST_DELAY_VAR: "0.2", retries.MAX_DELAY_VAR: "0.2", retries.WINDOW_VAR: "0.4"},
    )
    outputs = []
    # A SQL Server whose name does not resolve (the driver names the host in its message), and a
    # PostgreSQL ERP stand-in refusing connections (retried, then failed).
    for legacy in (
        f"mssql+pymssql://{USER}:{PASSWORD}@{HOST}:1433/RENTAL",
        f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/rental",
    ):
        result = _materialize({**base, "BODYFRIEND_LEGACY_URL": legacy})
        assert result.returncode != 0
        outputs.append(result.stdout + result.stderr)

    storage = _storage_as_text(instance_url)
    compute_logs = _files_as_text(dagster_home)
    # The failures were stored, with their causes: the search below looks at the right place.
    assert "unknown host); not retried" in storage
    assert "connection refused) after 2 retries" in storage
    assert "mssql+pymssql://***:1433/RENTAL" in storage
    for where, text in (("instance storage", storage), ("compute logs", compute_logs),
                        ("dagster's output", "\n".join(outputs))):
        found = [secret for secret in SECRETS if secret.lower() in text.lower()]
        assert not found, f"{found} in {where}"
