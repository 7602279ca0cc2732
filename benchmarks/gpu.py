"""One prepared run for a lent GPU: at most 9 minutes on one H100, records into a folder.

    .venv/bin/python benchmarks/gpu.py [--out DIR]      # on the GPU ($OUT when set)
    .venv/bin/python benchmarks/gpu.py --tiny           # the same steps on a CPU, ~1 min

1. the machine (GPU, torch, CUDA) -> ``machine.json``;
2. the speed comparison against the d2l reference: ``benchmarks/run.py``'s cases and code
   (``make bench``), 2 repetitions -> ``bench.json`` (``--tiny``: ``--quick``, LeNet, 1 rep);
3. the chapters' full profile (the book's settings), through the CLI
   (``python -m d2lcnn train NAME --profile full``), as many as the time left allows ->
   ``chapters/NAME.json`` and ``.png`` (``--tiny``: the smoke profile, 1 epoch, mini set);
4. ``gpu-run.json``: each step's status, seconds and output tail.

Each step runs in its own process with the time left as its timeout; run.py writes its
report after every case, so a step cut short keeps what it measured. Needs the full
Fashion-MNIST set in the data root ($D2LCNN_DATA) and benchmarks/.venv-bench for step 2;
where one is missing, that step is recorded as skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# chapter order, the cheap nets of a chapter first; the full profile's 10 epochs each
CHAPTERS = ("lenet", "lenet_modern", "alexnet", "vgg11", "nin", "googlenet", "lenet_bn",
            "resnet18", "densenet", "mobilenet_v1")
TINY_CHAPTERS = ("lenet", "lenet_bn")


def machine() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0) if cuda
            else platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "gpus": torch.cuda.device_count()}


def step(name: str, command: list[str], deadline: float, records: list[dict]) -> dict:
    """Run ``command`` with the time left; record its exit, seconds and output tail."""
    left = deadline - time.monotonic()
    record = {"step": name, "command": " ".join(command)}
    if left < 20:
        record.update(status="skipped", reason=f"{left:.0f} s left of the budget")
    else:
        started = time.monotonic()
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)  # its workers end with it
        try:
            output = process.communicate(timeout=left)[0]
            status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, status = process.communicate()[0], "timed out"
        record.update(status=status, seconds=round(time.monotonic() - started, 1),
                      output_tail=output[-1500:])
    records.append(record)
    print(f"{name}: {record['status']} {record.get('seconds', '')}", flush=True)
    return record


def missing_for_bench() -> str | None:
    """Why the comparison cannot run here, or None (no download is tried)."""
    if not (HERE / ".venv-bench" / ".d2l-ready").exists():
        return "benchmarks/.venv-bench is not prepared (make bench creates it, online)"
    from d2lcnn.data import load_data_fashion_mnist

    try:
        load_data_fashion_mnist(1, source="local", verbose=False)
    except RuntimeError as err:
        return f"the full Fashion-MNIST set is not in the data root: {err}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.py", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the same steps on a CPU, ~1 min")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-results")))
    parser.add_argument("--budget", type=float, help="seconds in all (default 510; tiny 90)")
    parser.add_argument("--chapters", nargs="+", help="default: all that fit, chapter order")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + (args.budget or (90 if args.tiny else 510))
    args.out.mkdir(parents=True, exist_ok=True)
    info = {**machine(), "tiny": args.tiny}
    (args.out / "machine.json").write_text(json.dumps(info, indent=1))
    print(f"machine: {info}", flush=True)
    records: list[dict] = []

    bench = [sys.executable, str(HERE / "run.py"), "--out", str(args.out / "bench.json")]
    bench += ["--quick", "--reps", "1", "--cases", "lenet"] if args.tiny else ["--reps", "2"]
    why = missing_for_bench()
    if why:
        records.append({"step": "bench", "status": "skipped", "reason": why})
    else:  # at most half the budget: the chapters get the rest
        step("bench", bench, time.monotonic() + (deadline - time.monotonic()) / 2, records)

    profile = ["--profile", "smoke", "--epochs", "1"] if args.tiny else ["--profile", "full"]
    for name in args.chapters or (TINY_CHAPTERS if args.tiny else CHAPTERS):
        step(f"chapter {name}", [sys.executable, "-m", "d2lcnn", "train", name, *profile,
                                 "--out", str(args.out / "chapters")], deadline, records)
    (args.out / "gpu-run.json").write_text(json.dumps({**info, "steps": records}, indent=1))
    print(f"records -> {args.out}", flush=True)
    return 1 if any(r["status"].startswith("failed") for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
