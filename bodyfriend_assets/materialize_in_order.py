"""The loop every platform step runs: its selected assets in order, each one's checks right after it.

lv0 (tables), the SQL models (lv1, lv2) and hc (Salesforce objects) each give a list of
:class:`StepItem` in dependency order and two functions, one materializing an item and one
evaluating one of its checks. The loop isolates failures to the assets downstream of them, within
the step and across the run's steps:

- an item whose own load fails (its source table missing, a duplicate key, a lock held too long)
  is reported with its error and yields nothing; the next items still run. A lost connection is
  not an item's failure: it raises, and the whole step is retried (``retries``);
- an item that reads an asset that failed, failed a blocking check, or was skipped, in this step or
  in an earlier step of the same run, is skipped, naming why;
- a failed blocking check is recorded as its evaluation event rather than yielded as the step's
  result (a yielded one makes Dagster fail the step, and then every later step of the run is
  abandoned); the skip rule above is what blocks its downstream assets. Steps are started even when
  an asset they read was not materialized (``skips_per_asset``);
- a step fails at its end, naming every asset of the run that was not materialized (failed,
  blocked or skipped), when no later platform step of the run is left to do so. So the night
  completes everything it can, and the run ends failed, naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import dagster as dg

from bodyfriend_assets.check_timing import timed_check
from bodyfriend_assets.retries import CONNECTION_ERRORS
from bodyfriend_assets.skips_per_asset import SKIPS_PER_ASSET

RECORDS_PER_LOOK = 20  # an asset's latest materializations of a partition, this run's among them


@dataclass(frozen=True)
class StepItem:
    """One asset of a step: what it is (``subject``: a catalog entry, a model, an hc object), how
    to name it in messages, the assets it reads, and its checks."""

    subject: object
    key: dg.AssetKey
    label: str
    upstream: frozenset[dg.AssetKey]
    checks: Sequence[dg.AssetCheckSpec] = field(default_factory=tuple)


# One result, or (a range whose partitions differ, e.g. load and off days) one per partition.
Materialize = Callable[[StepItem], dg.MaterializeResult | list[dg.AssetMaterialization]]
Evaluate = Callable[[StepItem, dg.AssetCheckSpec], dg.AssetCheckResult]


def materialize_in_order(
    context: dg.AssetExecutionContext,
    items: Sequence[StepItem],
    *,
    materialize: Materialize,
    evaluate: Evaluate,
    item_errors: tuple[type[BaseException], ...] = (Exception,),
) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization | dg.AssetCheckResult]:
    """Run the selected ``items`` (and the selected checks) in order; see the module docstring.
    ``item_errors``: the exceptions that are one item's failure (connection errors never are)."""
    selected = context.selected_asset_keys
    selected_checks = context.selected_asset_check_keys
    run = RunOutcome(context)
    last_step = not later_platform_step(context)
    stopped: dict[dg.AssetKey, str] = {}  # asset -> why what reads it must not run
    failures: dict[dg.AssetKey, str] = {}
    for item in items:
        checks = [spec for spec in item.checks if spec.key in selected_checks]
        if item.key not in selected and not checks:
            continue
        blocked = {key: stopped.get(key) or run.problem(key) for key in item.upstream}
        reasons = [f"{key.to_user_string()}: {why}" for key, why in sorted(blocked.items()) if why]
        if reasons:
            context.log.warning(f"{item.label} skipped: {'; '.join(reasons)}")
            stopped[item.key] = "skipped"
            continue
        if item.key in selected:
            try:
                result = materialize(item)
            except CONNECTION_ERRORS:
                raise  # the whole step is retried (the loads are idempotent)
            except item_errors as err:  # this item's own error: the others still run
                message = str(getattr(err, "orig", None) or err).strip()
                context.log.error(f"{item.label} failed: {message}")
                failures[item.key] = message
                stopped[item.key] = "failed"
                continue
            yield from result if isinstance(result, list) else (result,)
        for spec in checks:
            evaluation = timed_check(lambda: evaluate(item, spec))
            if spec.blocking and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                stopped[item.key] = f"blocking check {spec.name} failed"
                if not last_step:
                    # Stored as the check's event; yielded, it would fail this step and Dagster
                    # would abandon every later step of the run.
                    context.log_event(_evaluation_event(context, spec, evaluation))
                    continue
            yield evaluation
    if last_step:
        verdict = run.verdict(failures)
        if verdict:
            raise dg.Failure(description=verdict, allow_retries=False)


def _evaluation_event(context, spec: dg.AssetCheckSpec, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    partitioned = context.has_partition_key and spec.partitions_def is not None
    return dg.AssetCheckEvaluation(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=False,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        blocking=True,
        partition=context.partition_key if partitioned else None,
    )


def later_platform_step(context: dg.AssetExecutionContext) -> bool:
    """Whether another platform step of this run reads an asset of this step (it will then name
    this step's failures, or a step after it will)."""
    layer = context.job_def.asset_layer
    own = set(context.assets_def.keys)
    for key in own & set(layer.selected_asset_keys):
        for child in layer.asset_graph.get(key).child_keys:
            if child in own or child not in layer.selected_asset_keys:
                continue
            op = layer.asset_graph.get(child).assets_def.op
            if (op.tags or {}).get(SKIPS_PER_ASSET) == "true" and _runs_in_this_run(context, op.name):
                return True
    return False


def _runs_in_this_run(context: dg.AssetExecutionContext, op_name: str) -> bool:
    """Whether the step of ``op_name`` is part of this run: a run of selected ops, or a
    re-execution of some steps, leaves the others out of the run although the job has them."""
    if not context.job_def.has_node_named(op_name):
        return False
    step_keys = context.run.step_keys_to_execute
    return step_keys is None or op_name in step_keys


class RunOutcome:
    """What the run's earlier steps did to the assets a step reads, from the run's stored events:
    an asset of this run that was not materialized, or failed a blocking check, is a problem.

    Whether an asset was materialized is asked of the event log for the run's last partition
    only: a range run stores one materialization per asset and partition (84,000 for every layer
    since 2024), too many to read back whole at every step. The assets' latest materializations
    answer for most in one look (``_read_latest``); an asset they leave open is asked on its own."""

    def __init__(self, context: dg.AssetExecutionContext):
        self._context = context
        self._layer = context.job_def.asset_layer
        self._in_run = set(self._layer.selected_asset_keys)
        self._own = set(context.assets_def.keys)
        self._last_partition = [context.partition_key_range.end] if context.has_partition_key_range else None
        self._materialized: dict[dg.AssetKey, bool] = {}
        self._latest_read = False
        self._failed: dict[dg.AssetKey, list[str]] | None = None
        self._first_storage_id: int | None = None

    def _read_latest(self) -> None:
        """Mark materialized every asset of the run whose latest materialization is this run's, for
        its last partition: two queries for them all (a verdict looks at every asset of the run's
        steps so far, up to the whole run at its last step, which was a query per asset). An asset
        materialized by another run since, or not yet, is left to ``_is_materialized``."""
        self._latest_read = True
        run_id = self._context.run.run_id
        for record in self._context.instance.get_asset_records(list(self._in_run)):
            latest = record.asset_entry.last_materialization_record
            if latest is not None and latest.run_id == run_id and (
                self._last_partition is None or latest.partition_key in self._last_partition
            ):
                self._materialized[record.asset_entry.asset_key] = True

    def _is_materialized(self, key: dg.AssetKey) -> bool:
        if key not in self._materialized and not self._latest_read:
            self._read_latest()
        if key not in self._materialized:
            instance, run_id = self._context.instance, self._context.run.run_id
            if self._first_storage_id is None:
                [first] = instance.get_records_for_run(run_id, limit=1).records
                self._first_storage_id = first.storage_id - 1
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=key, asset_partitions=self._last_partition, after_storage_id=self._first_storage_id
                ),
                limit=RECORDS_PER_LOOK,
            ).records
            self._materialized[key] = any(record.run_id == run_id for record in records)
        return self._materialized[key]

    def _failed_checks(self) -> dict[dg.AssetKey, list[str]]:
        if self._failed is None:
            self._failed = {}
            records = self._context.instance.all_logs(
                self._context.run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            for record in records:
                evaluation = record.dagster_event.event_specific_data
                if evaluation.blocking and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    self._failed.setdefault(evaluation.asset_key, []).append(evaluation.check_name)
        return self._failed

    def problem(self, key: dg.AssetKey) -> str | None:
        """Why an asset of an earlier step of this run must not be read, or None."""
        if key in self._own or key not in self._in_run:
            return None
        if not self._is_materialized(key):
            return "not materialized in this run"
        failed_checks = self._failed_checks()
        if key in failed_checks:
            return f"blocking check {', '.join(sorted(failed_checks[key]))} failed"
        return None

    def verdict(self, own_failures: dict[dg.AssetKey, str]) -> str | None:
        """Every asset of this step and the run's earlier steps that was not materialized or
        failed a blocking check: failed (its own error), blocked, or skipped because of one of
        those; None when there is none."""
        # this step's own events came after the first look
        self._materialized, self._latest_read, self._failed = {}, False, None
        failed_checks = self._failed_checks()
        graph = self._layer.asset_graph
        scope = self._steps_so_far()
        missing = {key for key in scope if not self._is_materialized(key)}
        failed, skipped = [], []
        for key in sorted(missing):
            name = key.to_user_string()
            if any(parent in missing or parent in failed_checks for parent in graph.get(key).parent_keys):
                skipped.append(name)
            else:
                error = own_failures.get(key)
                failed.append(f"{name}: {error}" if error else f"{name} (its error is in the run log)")
        blocked = [
            f"{key.to_user_string()}: {', '.join(sorted(names))}"
            for key, names in sorted(failed_checks.items()) if key in scope
        ]
        if not (failed or blocked or skipped):
            return None
        lines = [
            f"{len(failed)} asset(s) failed, {len(blocked)} failed a blocking check, {len(skipped)} "
            "skipped because of them; every other asset of the run was materialized."
        ]
        lines += [f"failed: {line}" for line in failed]
        lines += [f"blocking check failed: {line}" for line in blocked]
        if skipped:
            lines.append(f"skipped: {', '.join(skipped)}")
        return "\n".join(lines)

    def _steps_so_far(self) -> set[dg.AssetKey]:
        """The run's assets computed by this step or by a step before it (all finished now)."""
        graph = self._layer.asset_graph
        seen = self._own & self._in_run
        todo = list(seen)
        while todo:
            for parent in graph.get(todo.pop()).parent_keys:
                if parent in self._in_run and parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return {key for asset in seen for key in graph.get(asset).assets_def.keys if key in self._in_run}
