"""Where a run's steps execute: on the run's own machine (the default) or on Celery workers.

The choice is configuration, read from the environment of the run's process when the run starts
(never at import), so one image and one set of definitions serve both:

- ``BODYFRIEND_EXECUTOR=local`` (or unset): the job's multiprocess executor, steps forked on the
  machine that runs the run;
- ``BODYFRIEND_EXECUTOR=celery``: each step is a Celery task, executed by whichever worker
  (``bodyfriend-serve worker``, on any machine) takes it from the broker at
  ``BODYFRIEND_CELERY_BROKER_URL`` (``redis://host:6379/0``); results come back through
  ``BODYFRIEND_CELERY_BACKEND_URL`` (default: the broker). Needs the ``celery`` extra.

Pools still hold across workers: the run's process claims a pool's slot before it sends the step.
The broker URL may carry a password, so it is never shown in an error or a log.
"""

from __future__ import annotations

import os

import dagster as dg

# How many steps of a run the local executor runs at once: one more than the machine's cores
# (Dagster's default is as many). A step spends part of its time waiting for a database to answer,
# so the extra step keeps the cores busy; on 2 cores the three lv0 steps then run at once, and a
# 7-day lv0 range took 5.6-5.7 s instead of 6.7-7.0 s (README, "lv0 over 7 days against sling").
STEPS_AT_ONCE = (os.cpu_count() or 1) + 1

EXECUTOR_VAR = "BODYFRIEND_EXECUTOR"
BROKER_URL_VAR = "BODYFRIEND_CELERY_BROKER_URL"
BACKEND_URL_VAR = "BODYFRIEND_CELERY_BACKEND_URL"
LOCAL, CELERY = "local", "celery"


class ExecutorSettingsError(ValueError):
    pass


def chosen_executor() -> str:
    """What ``BODYFRIEND_EXECUTOR`` asks for, in lower case: ``local`` when it is unset or empty.
    Not checked here: ``executor_from_environment`` fails a run on any other value."""
    return os.environ.get(EXECUTOR_VAR, "").strip().lower() or LOCAL


def executor_from_environment(local: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """An executor that, for each run, becomes ``local`` or the Celery executor, as
    ``BODYFRIEND_EXECUTOR`` says in the run's environment."""

    @dg.executor(name="step_executor", requirements=dg.multiple_process_executor_requirements())
    def _chosen(init_context: dg.InitExecutorContext) -> dg.Executor:
        choice = chosen_executor()
        if choice == CELERY:
            return celery_from_environment()
        if choice != LOCAL:
            raise ExecutorSettingsError(f"{EXECUTOR_VAR} must be {LOCAL!r} or {CELERY!r}, not {choice!r}")
        config = local.apply_config_mapping({}).value["config"]  # what `local` was configured with
        return local.executor_creation_fn(init_context._replace(executor_def=local, executor_config=config))

    return _chosen


def celery_from_environment():
    """The Celery executor on the broker and result backend the environment names; the workers
    build their Celery app from the same (``bodyfriend_assets.celery_worker``)."""
    try:
        from dagster._core.execution.retries import RetryMode
        from dagster_celery.executor import CeleryExecutor
    except ImportError:
        raise ExecutorSettingsError(
            "steps on Celery need dagster-celery: pip install 'bodyfriend_assets[celery]'"
        ) from None
    broker = os.environ.get(BROKER_URL_VAR, "").strip()
    if not broker:
        raise ExecutorSettingsError(f"steps on Celery need {BROKER_URL_VAR} (redis://host:6379/0)")
    backend = os.environ.get(BACKEND_URL_VAR, "").strip() or broker
    # Step retries (retry policies, RetryRequested) on, as the local executor has them by default.
    return CeleryExecutor(retries=RetryMode.ENABLED, broker=broker, backend=backend)
