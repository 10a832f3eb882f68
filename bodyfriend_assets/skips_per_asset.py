"""A platform step starts even when some of the assets it reads were not materialized in the run.

Dagster 1.13 gates steps, not assets: when a step finishes without yielding one of its optional
outputs (a table whose load failed), every step reading that output is skipped whole
(``ActiveExecution._should_skip_step``; dagster-io/dagster#9408 and #22242, both open). The
platform's steps each compute many assets (all of lv1 and lv2 in one step, to save process
start-ups), so one failed lv0 table would skip every lv1, lv2 and hc asset of the night.

A step whose op carries the tag ``SKIPS_PER_ASSET`` is therefore started once its upstream steps
have finished, whatever they yielded, and skips by itself the assets downstream of what failed
(``materialize_in_order``). Every other step keeps Dagster's rule. An upstream step that failed
(an exception, not a failed table) still stops the steps after it, as in Dagster.

This replaces one private method of Dagster's execution plan (in whichever process orchestrates
the steps: it imports the definitions, hence this module); dagster is pinned to 1.13.27, and
``test_failure_isolation`` fails if an upgrade changes the method.
"""

from dagster._core.execution.plan.active import ActiveExecution

SKIPS_PER_ASSET = "bodyfriend/skips_per_asset"
SKIPS_PER_ASSET_TAGS = {SKIPS_PER_ASSET: "true"}

# Dagster's own rule (also when this module is imported again, e.g. reloaded).
_dagster_should_skip_step = getattr(
    ActiveExecution._should_skip_step, "dagster_rule", ActiveExecution._should_skip_step
)


def _should_skip_step(self: ActiveExecution, step_key: str) -> bool:
    if (self.get_step_by_key(step_key).tags or {}).get(SKIPS_PER_ASSET) == "true":
        return False
    return _dagster_should_skip_step(self, step_key)


_should_skip_step.dagster_rule = _dagster_should_skip_step  # type: ignore[attr-defined]
ActiveExecution._should_skip_step = _should_skip_step  # type: ignore[method-assign]
