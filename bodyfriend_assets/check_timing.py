"""Every check result reports how long its queries took (metadata ``seconds``), like the
materializations do, so a run's time can be split into database work and the rest."""

import time
from collections.abc import Callable

import dagster as dg


def timed_check(evaluate: Callable[[], dg.AssetCheckResult]) -> dg.AssetCheckResult:
    began = time.monotonic()
    result = evaluate()
    return result.with_metadata({**result.metadata, "seconds": round(time.monotonic() - began, 3)})
