"""The fault-injection harness's quick mode (experiments/reliability/harness.py; its full mode's
counts are in experiments/reliability/README.md): kills of a W&B-logged run and of a sweep at
random moments resume to identical numbers, and the first bad inputs of its corpus stop with a
message, exit 2 and no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "experiments" / "reliability" / "harness.py"


@pytest.mark.slow
def test_quick_fault_injection_finds_nothing_lost_and_every_bad_input_handled(tmp_path):
    out = tmp_path / "faults.json"
    r = subprocess.run(
        [sys.executable, str(HARNESS), "--quick", "--work", str(tmp_path / "w"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    kills = result["kills"]
    assert kills["kills"] >= 3 and kills["failures"] == [], kills["failures"]
    assert kills["identical"] == kills["trials"]
    assert kills["lost_rows"] == kills["duplicated_rows"] == 0
    assert kills["wandb_checked"] >= 1 and kills["wandb_wrong"] == 0
    assert kills["good_checkpoints_put_aside"] == kills["resumes_not_restoring"] == 0
    bad = result["bad_inputs"]
    assert bad["cases"] == 12 and bad["failed"] == 0, [
        v for v in bad["verdicts"] if v["verdict"] != "handled"
    ]
