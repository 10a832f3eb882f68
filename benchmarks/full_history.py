"""The first full-history load of every layer, through ``bodyfriend load-history``, measured.

In a home of its own (``.bodyfriend/bench-history`` by default: its own embedded PostgreSQL
server, Data Hub and Dagster instance, on the repository's dagster.yaml), the benchmark seeds the
demo's synthetic ERP over every day from 2024-01-01 to yesterday (KST), then:

1. runs ``bodyfriend load-history`` (every layer, with its checks, 2024-01-01..yesterday, one
   run) on the empty Data Hub: the first full-history load;
2. re-loads a short range (``--short-days``, default 30) twice, the same range on the same data:
   with Dagster's own path (``dagster asset materialize --select 'group:lv0 or ...'
   --partition-range``, every event stored one by one) and with ``bodyfriend load-history``.

Each is a process tree of its own, watched for wall time and peak RSS (the sum over the tree:
command, code server, run worker, steps; the PostgreSQL server is not in it). The run's own
events split its time: planning (the "materialization planned" events, before the run starts),
start (to the first step), steps (first step start to last step end), and the events stored.
Last, it checks what the UI shows: every asset of the run materialized in every partition of the
range (Dagster's partition status).

    python -m benchmarks.full_history [--home DIR] [--short-days 30] [--skip-full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from benchmarks.extraction import _seconds, _watch

REPO = Path(__file__).resolve().parents[1]
FIRST_DAY = date(2024, 1, 1)
LAYERS_SELECTION = "group:lv0 or group:lv1 or group:lv2 or group:hc"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".bodyfriend" / "bench-history")
    parser.add_argument("--short-days", type=int, default=30)
    parser.add_argument("--skip-full", action="store_true", help="only the short-range comparison")
    args = parser.parse_args(argv)

    prepare_home(args.home)

    from bodyfriend_assets import embedded, settings
    from bodyfriend_assets.cli import yesterday_kst

    settings.legacy_url()  # the embedded server starts here, outside the measured trees
    last_day = yesterday_kst()
    days = (last_day - FIRST_DAY).days + 1
    try:
        _run([sys.executable, "-m", "bodyfriend_assets.cli", "seed", "--days", str(days)], "seed")
        results = []
        if not args.skip_full:
            results.append(measure("full history, bodyfriend load-history", FIRST_DAY, last_day, fast=True))
        short_end = FIRST_DAY + timedelta(days=args.short_days - 1)
        results.append(measure(f"{args.short_days} days, dagster asset materialize", FIRST_DAY, short_end, fast=False))
        results.append(measure(f"{args.short_days} days, bodyfriend load-history", FIRST_DAY, short_end, fast=True))
    finally:
        embedded.stop_server()
    _print(results)
    slow, fast = results[-2], results[-1]
    print(f"\n{args.short_days}-day re-load: load-history takes {fast['wall'] / slow['wall']:.2f} of "
          f"dagster asset materialize's wall time; planning {fast['planning'] / slow['planning']:.2f}, "
          f"steps {fast['steps'] / slow['steps']:.2f}")
    incomplete = [r["label"] for r in results if r["missing"]]
    if incomplete:
        print(f"partitions missing after: {incomplete}")
    return 1 if incomplete or any(r["status"] != "SUCCESS" for r in results) else 0


def prepare_home(home: Path) -> Path:
    """An empty home of the benchmark's own (embedded server, Data Hub, Dagster instance on the
    repository's dagster.yaml), in this process's environment and its children's."""
    home = home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ.update(BODYFRIEND_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    for var in ("BODYFRIEND_LEGACY_URL", "BODYFRIEND_DATAHUB_URL", "DAGSTER_PG_URL", "DAGSTER_EVENT_BATCH_SIZE"):
        os.environ.pop(var, None)
    return home


def measure(label: str, start: date, end: date, *, fast: bool, selection: str = LAYERS_SELECTION) -> dict:
    if fast:
        command = [sys.executable, "-m", "bodyfriend_assets.cli", "load-history",
                   "--start", start.isoformat(), "--end", end.isoformat()]
    else:
        command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "bodyfriend_assets.definitions",
                   "--select", selection, "--partition-range", f"{start.isoformat()}...{end.isoformat()}"]
    print(f"{label}: {start}..{end} ...", flush=True)
    log = Path(os.environ["BODYFRIEND_HOME"]) / f"{label.replace(' ', '_').replace(',', '')}.log"
    with log.open("w") as out:
        began = time.time()
        process = subprocess.Popen(command, cwd=os.environ["DAGSTER_HOME"], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        wall, peak_mb = _watch([process])
    split = _split_last_run(start, end)
    return {"label": label, "wall": wall, "peak_mb": peak_mb, "days": (end - start).days + 1, **split,
            "before_run": split["first_event"] - began, "after_run": began + wall - split["last_event"]}


def _split_last_run(start: date, end: date) -> dict:
    import dagster as dg
    from dagster._core.events import DagsterEventType as Event

    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        logs = instance.all_logs(run.run_id)
        first = {}
        last = {}
        counts = Counter()
        work = {}  # the seconds each load and check reports (its SQL and COPY), once per range
        for entry in logs:
            kind = entry.dagster_event.event_type if entry.dagster_event else None
            counts[kind] += 1
            first.setdefault(kind, entry.timestamp)
            last[kind] = entry.timestamp
            if kind in (Event.ASSET_MATERIALIZATION, Event.ASSET_CHECK_EVALUATION):
                data = entry.dagster_event.event_specific_data
                if kind == Event.ASSET_MATERIALIZATION:
                    work[data.materialization.asset_key, None] = _seconds(data.materialization.metadata)
                else:
                    work[data.asset_key, data.check_name] = _seconds(data.metadata)
        keys = [key for key in instance.get_asset_keys() if key.path[0] in ("lv0", "lv1", "lv2", "hc")]
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        missing = {
            key.to_user_string(): len(set(days) - set(instance.get_materialized_partitions(key)))
            for key in keys
        }
    planned = Event.ASSET_MATERIALIZATION_PLANNED
    return {
        "status": run.status.value,
        "planned_events": counts[planned],
        "materializations": counts[Event.ASSET_MATERIALIZATION],
        "check_evaluations": counts[Event.ASSET_CHECK_EVALUATION],
        "events": len(logs),
        "first_event": logs[0].timestamp,
        "last_event": logs[-1].timestamp,
        "work": sum(work.values()),
        "planning": last[planned] - logs[0].timestamp,
        "start": first[Event.STEP_START] - last[planned],
        "steps": last[Event.STEP_SUCCESS] - first[Event.STEP_START] if Event.STEP_SUCCESS in last else float("nan"),
        "assets": len(keys),
        "missing": {key: n for key, n in missing.items() if n},
    }


def _run(command: list[str], what: str) -> None:
    began = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL)
    print(f"{what}: {time.monotonic() - began:.1f}s", flush=True)


def _print(results: list[dict]) -> None:
    header = (f"{'run':<44} {'days':>5} {'status':>8} {'wall s':>7} {'planning s':>10} {'start s':>7} "
              f"{'steps s':>8} {'planned ev':>10} {'mat. ev':>8} {'events':>8} {'peak MB':>8} {'assets':>6} {'missing':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['label']:<44} {r['days']:>5} {r['status']:>8} {r['wall']:>7.1f} {r['planning']:>10.1f} "
              f"{r['start']:>7.1f} {r['steps']:>8.1f} {r['planned_events']:>10,} {r['materializations']:>8,} "
              f"{r['events']:>8,} {r['peak_mb']:>8.0f} {r['assets']:>6} {sum(r['missing'].values()):>7}")


if __name__ == "__main__":
    sys.exit(main())
