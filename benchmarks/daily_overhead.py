"""Where the daily run's wall time goes outside SQL and COPY (issue 16, goal 4: at most 7 s).

    python -m benchmarks.daily_overhead [--repeat 3] [--in-process] [--output daily_overhead.json]

Runs the platform's ``daily_data_hub`` job (every layer with its checks: lv0, lv1, lv1ex, lv2, hc)
for one day of ``bodyfriend seed``-size data, as the schedule runs it: ``execute_job`` with the
job's own executor (steps forked from a preloaded fork server), on a Dagster instance configured by
the repository's ``dagster.yaml`` (PostgreSQL storage, a new database for each run), in a process
of its own started for the run, as the run launcher starts one (multiprocessing's spawn method).
The databases are those of ``python -m benchmarks.extraction`` (its home, ``.bodyfriend/bench``),
the Data Hub emptied before each run. ``--in-process`` runs the same selection with the
in-process executor instead.

The run's wall time (``execute_job``, from the call to its return) is split with the run's own
event log, not by subtraction alone. Every materialization and check result reports the seconds
its SQL and COPY took (metadata ``seconds``), and its event's timestamp is when that work ended,
so each is an interval of the timeline. Each instant of the run is put in one of four parts,
the first that applies:

- **SQL and COPY**: some step is inside such an interval of lv0, lv1, lv2, hc or a check (the
  Data Hub's and the source's work);
- **lv1ex address search**: some lv1ex asset is searching its addresses or writing them. An lv1ex
  asset reads lv1 in chunks and sends each new address to the Kakao address search (in
  development, the local stand-in), from the moment it holds the ``address_master`` lock (its log
  line "holding the address_master pool") to its log line counting the requests sent; then its
  output's write (its ``seconds``) COPYs the answers. This is mostly HTTP round trips (a profile of
  the step: over 95 % in ``KakaoLocal.search``) and is shown apart: its cost is set by the address
  service, not by the platform. The wait for the lock is the step's own;
- **step, outside SQL**: some step is between its STEP_START and its end (Python of the steps and
  checks, event writes);
- **step process start**: some step's process is starting (STEP_WORKER_STARTING to STEP_START);
- **orchestration**: none of these (the job's load and plan, the run's events, the executor
  between steps).

"Outside SQL and COPY" is the last four: the wall time in which no step was doing database work;
"the platform's own" is the last three.
Also printed, as the earlier measurements in the README were made: the sum of every reported
``seconds`` and the wall time minus that sum (which counts parallel steps' SQL twice, so it
understates the overhead when steps overlap). Per step: its process start, its body, its SQL and
COPY. The process's whole lifetime (interpreter start and imports included) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.extraction import (
    DEMO_ROWS, INSTANCE_CONFIG, START, Bench, _wait_for_quiet, _watch, in_a_run_process,
)

PARTS = ("sql", "lv1ex", "step_body", "step_start", "orchestration")
PLATFORM_PARTS = ("step_body", "step_start", "orchestration")  # Dagster's and the steps' own cost
PART_LABELS = {
    "sql": "SQL and COPY",
    "lv1ex": "lv1ex address search",
    "step_body": "steps, outside SQL",
    "step_start": "step process start",
    "orchestration": "orchestration",
}
GOAL_SECONDS = 7.0
LV1EX_REQUESTS = re.compile(r"(\d+) request\(s\) sent")  # an lv1ex asset's last log line of its search
LV1EX_LOCKED = "holding the address_master pool"  # ... and its first (pools.exclusive_pool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.daily_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="daily runs to measure, one after the other")
    parser.add_argument("--in-process", action="store_true", help="the in-process executor instead of the job's")
    parser.add_argument("--days", type=int, default=7, help="days the seeded data spans (the run takes the last)")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait at most, before each run, for other work on the machine to settle")
    parser.add_argument("--home", default=".bodyfriend/bench", help="BODYFRIEND_HOME of the benchmark")
    parser.add_argument("--output", default="daily_overhead.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _run_process(json.loads(args.worker))

    os.environ["BODYFRIEND_HOME"] = str(Path(args.home).expanduser().resolve())
    os.environ.pop("BODYFRIEND_LEGACY_URL", None)
    os.environ.pop("BODYFRIEND_DATAHUB_URL", None)
    bench = Bench(argparse.Namespace(days=args.days, reseed=False))
    legacy_url = bench.legacy_database(DEMO_ROWS, every_table=True)
    runs = []
    for attempt in range(args.repeat):
        print(f"daily run {attempt + 1}/{args.repeat} ...", flush=True)
        bench.reset_target()
        busy = _wait_for_quiet(args.quiet_wait)
        run = _measure(bench, legacy_url, args)
        run["cpu_busy_percent_before"] = busy
        _print_run(run)
        runs.append(run)
    bench.reset_target()
    _print_summary(runs)
    document = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "in_process": args.in_process, "runs": runs}
    Path(args.output).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.output}")
    return 0


def _measure(bench: Bench, legacy_url, args) -> dict:
    env = {
        **os.environ,
        "BODYFRIEND_LEGACY_URL": legacy_url.render_as_string(hide_password=False),
        "BODYFRIEND_DATAHUB_URL": bench.hub_url.render_as_string(hide_password=False),
        "BODYFRIEND_HC_MODE": "development",  # the hc tables are created in the benchmark's Data Hub
        "DAGSTER_PG_URL": bench.fresh_database("bench_dagster").render_as_string(hide_password=False),
    }
    with tempfile.TemporaryDirectory(prefix="bench-daily-") as scratch:
        out = Path(scratch) / "result.json"
        spec = {"days": args.days, "in_process": args.in_process, "out": str(out), "scratch": scratch}
        stderr_path = Path(scratch) / "stderr.log"
        with open(stderr_path, "wb") as stderr:
            worker = subprocess.Popen([sys.executable, "-m", "benchmarks.daily_overhead", "--worker", json.dumps(spec)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            lifetime, peak = _watch([worker])
        if worker.returncode != 0 or not out.exists():
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"the daily run's worker failed (exit {worker.returncode}):\n{tail}")
        report = json.loads(out.read_text(encoding="utf-8"))
    return {**report, "process_seconds": round(lifetime, 3), "peak_rss_mb": round(peak, 1)}


# -- the worker: one daily run, and its event log ------------------------------------------------


def _run_process(spec: dict) -> int:
    """The run's process, started as Dagster's code server starts a launched run's: by
    multiprocessing's spawn method (so it starts its steps' fork server as it builds the instance,
    step_server.py). The in-process executor has no steps to fork: its run runs here."""
    return _worker(spec) if spec["in_process"] else in_a_run_process(_worker, spec)


def _worker(spec: dict) -> int:
    import dagster as dg

    from benchmarks.extraction import daily_job, daily_job_in_process

    partition = (START + timedelta(days=spec["days"] - 1)).isoformat()
    target = daily_job_in_process if spec["in_process"] else daily_job
    shutil.copy(INSTANCE_CONFIG, Path(spec["scratch"]) / "dagster.yaml")
    with dg.DagsterInstance.from_config(spec["scratch"]) as instance:
        began = time.time()
        job = dg.reconstructable(target)  # imports the definitions, as the run's process does
        loaded = time.time()
        result = dg.execute_job(job, instance=instance, tags={"dagster/partition": partition})
        ended = time.time()
        if not result.success:
            raise SystemExit(f"the daily run failed: {[e.message for e in result.all_events if e.is_failure]}")
        entries = instance.all_logs(result.run_id)
    report = split_run(entries, began, ended)
    report["definitions_import"] = round(loaded - began, 3)
    report["partition"] = partition
    Path(spec["out"]).write_text(json.dumps(report), encoding="utf-8")
    return 0


def split_run(entries, began: float, ended: float) -> dict:
    """The run's wall time ``[began, ended]`` in the four parts, from its event log entries."""
    import dagster as dg

    kinds = dg.DagsterEventType
    steps: dict[str, dict] = {}
    sql: list[tuple[float, float]] = []
    lv1ex: list[tuple[float, float]] = []
    sql_by_layer: dict[str, float] = {}
    requests = 0
    run_start = ended
    for entry in entries:
        event = entry.dagster_event
        ts = entry.timestamp
        step = steps.setdefault(entry.step_key, {"sql_seconds": 0.0}) if entry.step_key else None
        if event is None:
            message = entry.user_message or ""
            if message == LV1EX_LOCKED and step is not None:
                step["search_from"] = ts
            sent = LV1EX_REQUESTS.search(message)
            if sent:
                requests += int(sent.group(1))
                if step is not None:
                    lv1ex.append((step.get("search_from", step.get("start", ts)), ts))
            continue
        kind = event.event_type
        if kind == kinds.RUN_START:
            run_start = ts
        elif kind == kinds.STEP_WORKER_STARTING:
            step["starting"] = ts
        elif kind == kinds.STEP_START:
            step["start"] = ts
        elif kind in (kinds.STEP_SUCCESS, kinds.STEP_FAILURE):
            step["end"] = ts
        elif kind in (kinds.ASSET_MATERIALIZATION, kinds.ASSET_CHECK_EVALUATION):
            if kind == kinds.ASSET_MATERIALIZATION:
                data = event.step_materialization_data.materialization
            else:
                data = event.event_specific_data
            seconds = data.metadata.get("seconds")
            if seconds is not None:
                value = float(seconds.value)
                layer = data.asset_key.path[0]
                (lv1ex if layer == "lv1ex" else sql).append((ts - value, ts))
                sql_by_layer[layer] = sql_by_layer.get(layer, 0.0) + value
                if step is not None:
                    step["sql_seconds"] += value
    bodies = [(s["start"], s["end"]) for s in steps.values() if "start" in s and "end" in s]
    starts = [(s.get("starting", s["start"]), s["start"]) for s in steps.values() if "start" in s]
    parts = _timeline(began, ended, {"sql": sql, "lv1ex": lv1ex, "step_body": bodies, "step_start": starts})
    wall = ended - began
    sql_sum = sum(v for layer, v in sql_by_layer.items() if layer != "lv1ex")
    first_step = min((s.get("starting", s.get("start", ended)) for s in steps.values()), default=ended)
    last_step = max((s.get("end", began) for s in steps.values()), default=began)
    return {
        "seconds": round(wall, 3),
        "parts": {k: round(v, 3) for k, v in parts.items()},
        "outside_seconds": round(wall - parts["sql"], 3),
        "platform_seconds": round(sum(parts[p] for p in PLATFORM_PARTS), 3),
        "sql_seconds_sum": round(sql_sum, 3),
        "outside_seconds_by_sum": round(wall - sql_sum, 3),
        "lv1ex_requests": requests,
        "sql_seconds_by_layer": {k: round(v, 3) for k, v in sorted(sql_by_layer.items())},
        "before_run_start": round(run_start - began, 3),  # the definitions' import, the run's creation
        "before_first_step": round(first_step - began, 3),
        "after_last_step": round(ended - last_step, 3),
        "steps": {
            key: {
                "process_start": round(s["start"] - s["starting"], 3) if "starting" in s and "start" in s else None,
                "body": round(s["end"] - s["start"], 3) if "start" in s and "end" in s else None,
                "sql": round(s["sql_seconds"], 3),
                "began_at": round(s.get("starting", s.get("start", began)) - began, 3),
            }
            for key, s in sorted(steps.items(), key=lambda kv: kv[1].get("starting", kv[1].get("start", 0.0)))
        },
    }


def _timeline(began: float, ended: float, intervals: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Seconds of ``[began, ended]`` in each part; an instant in several counts for the first of
    ``PARTS``, one in none for ``orchestration``."""
    cuts = {began, ended}
    for spans in intervals.values():
        for a, b in spans:
            cuts.update(min(max(t, began), ended) for t in (a, b))
    points = sorted(cuts)
    totals = dict.fromkeys(PARTS, 0.0)
    for a, b in zip(points, points[1:]):
        middle = (a + b) / 2
        part = next((p for p in PARTS[:-1] if any(lo <= middle < hi for lo, hi in intervals[p])), "orchestration")
        totals[part] += b - a
    return totals


# -- the report ----------------------------------------------------------------------------------


def _print_run(run: dict) -> None:
    parts = ", ".join(f"{PART_LABELS[p]} {run['parts'][p]:.1f}s" for p in PARTS)
    print(f"  {run['seconds']:.1f}s wall ({run['process_seconds']:.1f}s the process): {parts}")
    print(f"  outside SQL and COPY {run['outside_seconds']:.1f}s, of which the platform's own "
          f"{run['platform_seconds']:.1f}s and lv1ex's {run['parts']['lv1ex']:.1f}s "
          f"({run['lv1ex_requests']} requests); by the sum of reported seconds "
          f"({run['sql_seconds_sum']:.1f}s): {run['outside_seconds_by_sum']:.1f}s; "
          f"before the run's start {run['before_run_start']:.1f}s "
          f"(the definitions' import {run['definitions_import']:.1f}s), before the first step {run['before_first_step']:.1f}s, after the last {run['after_last_step']:.1f}s")
    print(f"  {'step':<44} {'began':>7} {'start':>7} {'body':>7} {'SQL':>7}")
    for key, step in run["steps"].items():
        cells = [f"{step[k]:>7.1f}" if step[k] is not None else f"{'-':>7}" for k in ("began_at", "process_start", "body", "sql")]
        print(f"  {key[:44]:<44} {' '.join(cells)}")


def _print_summary(runs: list[dict]) -> None:
    if not runs:
        return

    def span(values) -> str:
        return f"{min(values):.1f}" if len(values) == 1 else f"{min(values):.1f}-{max(values):.1f}"

    print(f"\n{len(runs)} daily run(s): wall {span([r['seconds'] for r in runs])}s, "
          f"SQL and COPY {span([r['parts']['sql'] for r in runs])}s, "
          f"outside {span([r['outside_seconds'] for r in runs])}s "
          f"(by the sum: {span([r['outside_seconds_by_sum'] for r in runs])}s), "
          f"of which lv1ex {span([r['parts']['lv1ex'] for r in runs])}s "
          f"and the platform's own {span([r['platform_seconds'] for r in runs])}s")
    for what, key in (("outside SQL and COPY", "outside_seconds"), ("the platform's own (outside SQL, COPY and lv1ex)", "platform_seconds")):
        best = min(r[key] for r in runs)
        print(f"  [{'met' if best <= GOAL_SECONDS else 'MISSED'}] {what} <= {GOAL_SECONDS:g}s: {best:.1f}s in the best run")


if __name__ == "__main__":
    raise SystemExit(main())
