"""The Celery app of a step worker: ``celery -A bodyfriend_assets.celery_worker worker``, which
``bodyfriend-serve worker`` runs.

Built from the environment when the worker starts, with the same broker and result backend the
runs' Celery executor uses (``step_execution``), and Dagster's one task: execute a run's step,
writing its events to the instance at ``DAGSTER_HOME``.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from bodyfriend_assets.step_execution import celery_from_environment

app = make_app(celery_from_environment().app_args())
execute_plan = create_task(app)
