"""benchmarks/gpu.py --tiny: the lent-GPU script's steps, run on this CPU in about a minute."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_mode_runs_every_step_and_writes_the_records(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads((tmp_path / "gpu-run.json").read_text())
    assert run["tiny"] is True and json.loads((tmp_path / "machine.json").read_text())
    steps = {record["step"]: record for record in run["steps"]}
    assert steps["bench"]["status"] in ("ok", "skipped")  # skipped: no reference venv here
    if steps["bench"]["status"] == "ok":
        assert json.loads((tmp_path / "bench.json").read_text())["cases"]
    for name in ("lenet", "lenet_bn"):
        assert steps[f"chapter {name}"]["status"] == "ok"
        record = json.loads((tmp_path / "chapters" / f"{name}.json").read_text())
        assert record  # the CLI's result record
        assert (tmp_path / "chapters" / f"{name}.png").exists()
