"""The ``bodyfriend`` command: demo, dev and seed on the embedded default or on given servers.

- ``bodyfriend demo``: seed the embedded stand-in legacy database, run the nightly job (every
  layer, with its checks) for one daily partition, print per-table and per-layer summaries.
- ``bodyfriend dev``: the Dagster UI (``dagster dev``) on the same data and instance.
- ``bodyfriend load-history``: every layer for every day from 2024-01-01 to yesterday, one run.
- ``bodyfriend seed --rows N``: write the synthetic legacy tables into ``BODYFRIEND_LEGACY_URL``
  (a PostgreSQL stand-in) or the embedded legacy database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bodyfriend_assets import embedded, settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = 20_000
SEED_START = date(2024, 1, 1)
DEV_SHUTDOWN_SECONDS = 60
INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # the demo run's console
KST = ZoneInfo("Asia/Seoul")


def prepare_instance_home() -> Path:
    """Point Dagster at the platform's instance: ``DAGSTER_HOME`` holding the project's
    dagster.yaml (storage: ``DAGSTER_PG_URL`` or the embedded server), unless already set."""
    if not os.environ.get("DAGSTER_HOME"):
        dagster_home = embedded.home() / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(dagster_home)
    return Path(os.environ["DAGSTER_HOME"])


def _seedable_legacy_url():
    """The legacy database that ``seed`` may overwrite: never a SQL Server."""
    url = settings.legacy_url()
    if settings.is_sql_server(url):
        raise SystemExit(
            f"{settings.LEGACY_URL_VAR} names a SQL Server; seed writes synthetic tables only "
            "into a PostgreSQL stand-in"
        )
    return url


def first_day(args: argparse.Namespace) -> date:
    """The first seeded day: ``--start``, or ``--days`` days ending yesterday (KST) with
    ``--end-yesterday``, or 2024-01-01 (the first partition, which scripts rely on)."""
    if args.start is not None:
        return args.start
    if args.end_yesterday:
        return yesterday_kst() - timedelta(days=args.days - 1)
    return SEED_START


def yesterday_kst() -> date:
    """The last finished Korean day: the partition the nightly schedule runs."""
    return datetime.now(KST).date() - timedelta(days=1)


def cmd_seed(args: argparse.Namespace) -> int:
    from bodyfriend_assets.demo.generator import seed_legacy

    url = _seedable_legacy_url()
    began = time.monotonic()
    start = first_day(args)
    written = seed_legacy(url, rows=args.rows, start=start, days=args.days)
    last = start + timedelta(days=args.days - 1)
    print(
        f"seeded {len(written)} legacy tables ({sum(written.values()):,} rows, "
        f"{start.isoformat()}..{last.isoformat()} KST) into "
        f"{settings.describe_url(url)} in {time.monotonic() - began:.1f}s"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed the stand-in with days ending yesterday (KST), then launch the nightly job for the
    last of them through the instance, as the schedule would, and summarise the run."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    from bodyfriend_assets.automation import LAYERS, daily_job
    from bodyfriend_assets.definitions import catalog
    from bodyfriend_assets.launch import launch_and_wait, partition_tags

    if os.environ.get(settings.LEGACY_URL_VAR):
        print(f"{settings.LEGACY_URL_VAR} is set: extracting from it as it is (no seeding)")
    else:
        cmd_seed(args)
    partition = args.partition or (first_day(args) + timedelta(days=args.days - 1)).isoformat()
    prepare_instance_home()
    print(f"launching {daily_job.name} for partition {partition} (every layer, with its checks) ...")
    with dg.DagsterInstance.get() as instance:
        run = launch_and_wait(
            instance, daily_job.name, partition_tags(partition), run_config=INFO_LOGS,
            on_launch=lambda run: print(f"run {run.run_id} launched; it is in the UI's Runs (make dev)"),
        )
        materializations = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        evaluations = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    metadata = {
        entry.asset_materialization.asset_key: {
            k: v.value for k, v in entry.asset_materialization.metadata.items()
        }
        for entry in materializations
    }
    _print_lv0_summary([(e, metadata.get(dg.AssetKey(["lv0", e.name]), {})) for e in catalog.tables])
    _print_layer_summary(metadata, LAYERS)
    _print_sync_back(metadata)
    checks = [entry.dagster_event.event_specific_data for entry in evaluations]
    failed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    print(f"checks: {len(checks) - len(failed)} passed, {len(failed)} failed {failed if failed else ''}")
    if run.status != dg.DagsterRunStatus.SUCCESS:
        print(f"run {run.run_id} ended {run.status.value}; see its logs in the UI", file=sys.stderr)
        return 1
    return 0


def _print_lv0_summary(rows) -> None:
    from bodyfriend_assets.partitions import NOT_LOADED

    header = f"{'lv0 table':<28} {'mode':<11} {'rows':>9} {'pages':>5} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    total_rows = 0
    total_seconds = 0.0
    for entry, meta in rows:
        if not meta:
            print(f"{entry.name:<28} {entry.mode:<11} {'failed':>9}")
            continue
        if NOT_LOADED in meta:  # an off day of the table's load_days: nothing read
            print(f"{entry.name:<28} {entry.mode:<11} {'not a load day':>14}")
            continue
        total_rows += meta["rows_read"]
        total_seconds += meta["seconds"]
        print(
            f"{entry.name:<28} {entry.mode:<11} {meta['rows_read']:>9,} {meta['pages']:>5} "
            f"{meta['seconds']:>8.2f} {meta['rows_per_second']:>9,.0f} {meta['peak_rss_mb']:>8.0f}"
        )
    print("-" * len(header))
    print(f"{'total':<28} {'':<11} {total_rows:>9,} {'':>5} {total_seconds:>8.2f}")


def _print_layer_summary(metadata: dict, layers) -> None:
    print(f"{'layer':<8} {'tables':>6} {'rows':>10} {'rows changed':>13}")
    for layer in layers:
        tables = [m for key, m in metadata.items() if key.path[0] == layer]
        if not tables:
            continue
        # lv1ex (Python assets, one shared table): the new addresses each wrote
        rows = sum(m.get("rows", m.get("rows_read", m.get("rows_written", 0))) for m in tables)
        changed = sum(m.get("rows_changed", m.get("rows_written", 0)) for m in tables)
        print(f"{layer:<8} {len(tables):>6} {rows:>10,} {changed:>13,}")


def _print_sync_back(metadata: dict) -> None:
    """The Product2 edits made in Salesforce that the run kept in hc and brought back into lv1."""
    edits = next((m for key, m in metadata.items() if key.path == ["lv1", "product2_salesforce_edits"]), None)
    if edits is not None:
        print(f"Product2 sync-back: {edits['salesforce_edits']:,} fields of "
              f"{edits['records_edited_in_salesforce']:,} products edited in Salesforce, "
              "in lv1.product2_salesforce_edits")


def cmd_dev(args: argparse.Namespace) -> int:
    """``dagster dev`` on the platform until Ctrl-C; then the embedded server stops too, if this
    command started it."""
    server_was_running = embedded.running_server_pid() is not None
    settings.legacy_url()  # starts the embedded server (held while the UI runs) and seeds it once
    settings.datahub_url()
    dagster_home = prepare_instance_home()
    command = [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port)]
    workspace = PROJECT_ROOT / "workspace.yaml"
    if workspace.exists():
        command += ["-w", str(workspace)]
    else:
        command += ["-m", "bodyfriend_assets.definitions"]
    print(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C to stop)")
    # Run from DAGSTER_HOME: from the project folder, `dagster dev` would warn that the
    # project's dagster.yaml "will not be used", though DAGSTER_HOME holds a copy of it.
    dagster_dev = subprocess.Popen(command, cwd=dagster_home)
    try:
        return _wait_for(dagster_dev)
    finally:
        if not server_was_running and embedded.running_server_pid() is not None:
            print("stopping the embedded PostgreSQL server")
            embedded.stop_server()


def _wait_for(dagster_dev: subprocess.Popen) -> int:
    """The exit code of ``dagster dev``. Ctrl-C reaches it too (same process group): it then
    stops its webserver, daemon and code server, which takes a few seconds; wait for that
    rather than kill it, which would orphan them."""
    try:
        return dagster_dev.wait()
    except KeyboardInterrupt:
        try:
            dagster_dev.wait(timeout=DEV_SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            dagster_dev.terminate()
            dagster_dev.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            dagster_dev.kill()
            dagster_dev.wait()
        return 0


def cmd_load_history(args: argparse.Namespace) -> int:
    """``bodyfriend load-history``: every layer over ``--start..--end`` (default: the first
    partition to yesterday, KST) as one run through the instance; summarised like the demo."""
    import dagster as dg

    from bodyfriend_assets.full_history import load_history

    end = args.end or yesterday_kst()
    prepare_instance_home()
    print(f"loading every layer for {args.start.isoformat()}..{end.isoformat()} (KST) as one run ...")
    began = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        run = load_history(
            instance, args.start, end,
            on_launch=lambda run: print(f"run {run.run_id} launched; it is in the UI's Runs (make dev)"),
        )
    print(f"run {run.run_id} ended {run.status.value} in {time.monotonic() - began:.0f}s")
    return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 1


def cmd_dag_log_backfill(args: argparse.Namespace) -> int:
    """``bodyfriend dag-log-backfill``: rebuild dag_log from the platform instance's history."""
    import dagster as dg

    from bodyfriend_assets.compat.dag_log import backfill_dag_log
    from bodyfriend_assets.definitions import blocking_checks, dag_ids, stand_ins
    from bodyfriend_assets.resources import DataHub

    prepare_instance_home()
    began = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        summary = backfill_dag_log(
            instance, DataHub().engine(), dag_ids, stand_ins=stand_ins, blocking_checks=blocking_checks
        )
    print(
        f"dag_log: {summary.materializations:,} materializations -> "
        f"{summary.rows:,} (dag_id, day) rows, {summary.written:,} inserted or updated in "
        f"public.dag_log on {settings.describe_url(settings.datahub_url())} "
        f"in {time.monotonic() - began:.1f}s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bodyfriend", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def data_options(sub, *, end_yesterday: bool):
        sub.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of each large table")
        sub.add_argument("--start", type=date.fromisoformat, default=None,
                         help="first day of the synthetic data (KST, YYYY-MM-DD)"
                         + ("" if end_yesterday else f"; default {SEED_START.isoformat()}"))
        sub.add_argument("--end-yesterday", action="store_true", default=end_yesterday,
                         help="the days end yesterday (KST)" + (" (the default)" if end_yesterday else ""))
        sub.add_argument("--days", type=int, default=7, help="days the synthetic data spans")

    seed = commands.add_parser("seed", help="write the synthetic legacy tables")
    data_options(seed, end_yesterday=False)
    seed.set_defaults(run=cmd_seed)

    demo = commands.add_parser("demo", help="seed, then materialize every layer for a day")
    data_options(demo, end_yesterday=True)
    demo.add_argument("--partition", help="daily partition (YYYY-MM-DD); default: the last seeded day, yesterday (KST)")
    demo.set_defaults(run=cmd_demo)

    dev = commands.add_parser("dev", help="open the Dagster UI on the platform")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(run=cmd_dev)

    history = commands.add_parser(
        "load-history", help="every layer for every day from the first partition to yesterday, one run"
    )
    history.add_argument("--start", type=date.fromisoformat, default=SEED_START,
                         help=f"first day (KST, YYYY-MM-DD); default {SEED_START.isoformat()}, the first partition")
    history.add_argument("--end", type=date.fromisoformat, default=None,
                         help="last day (KST, YYYY-MM-DD); default yesterday")
    history.set_defaults(run=cmd_load_history)

    backfill = commands.add_parser(
        "dag-log-backfill", help="rebuild public.dag_log from the Dagster instance's history"
    )
    backfill.set_defaults(run=cmd_dag_log_backfill)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
