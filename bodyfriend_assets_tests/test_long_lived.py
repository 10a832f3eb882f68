"""What a process imports to run the platform is set aside from Python's garbage collector
(long_lived.py): real interpreters, started fresh, report what their collector still walks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bodyfriend_assets_tests.processes import REPOSITORY

REPORT = (
    "import gc, json, sys; sys.path.insert(0, sys.argv[1]); import bodyfriend_assets.definitions; "
    "print(json.dumps({'set_aside': gc.get_freeze_count(), 'walked': len(gc.get_objects())}))"
)


def test_importing_the_definitions_sets_dagster_and_the_definitions_aside():
    shown = subprocess.run([sys.executable, "-c", REPORT, str(REPOSITORY)],
                           check=True, capture_output=True, text=True, env=os.environ.copy())
    report = json.loads(shown.stdout.strip().splitlines()[-1])
    # Before, every one of these objects was walked at each full collection and again at exit.
    assert report["set_aside"] > 100_000
    assert report["walked"] < report["set_aside"] / 100
