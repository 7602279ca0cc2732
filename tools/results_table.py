"""Print the README's results tables: the chapters' recorded runs next to the book's
numbers, and the league (one budget for all nets, mean +- standard error over seeds).

Usage: python tools/results_table.py   (reads notebooks/results/*.json)
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks/
from benchmarks.league import league_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "notebooks" / "results"

# registry name -> (notebook, what it is, the book's test accuracy: d2l-zh / d2l-en builds,
# V100, 10 epochs, official split, as issue 26 lists them; the cpu target, min over seeds)
CHAPTERS = {
    "lenet": ("01_lenet", "LeNet-5 (sigmoid, avg pooling)", "0.779 / 0.789", 0.78),
    "alexnet": ("02_alexnet", "AlexNet", "0.883 / 0.882", 0.88),
    "vgg11": ("03_vgg", "VGG-11, narrow (ratio 4)", "0.920 / 0.922", 0.92),
    "nin": ("04_nin", "NiN", "0.790 / 0.785", 0.79),
    "googlenet": ("05_googlenet", "GoogLeNet", "0.886 / 0.883", 0.88),
    "lenet_bn": ("06_batchnorm", "LeNet with batch normalization", "0.807 / 0.838", 0.82),
    "resnet20": ("07_resnet", "ResNet-20 (the paper's CIFAR net; book: ResNet-18)",
                 "0.893 / 0.918 (ResNet-18, 96 px)", 0.90),
    "densenet": ("08_densenet", "DenseNet", "0.885 / 0.821", 0.85),
    "mobilenet_v1": ("09_mobilenet", "MobileNet v1", "(not in the book)", 0.90),
}


def chapter_rows() -> None:
    """One row per chapter from its seeds record (``benchmarks/recipes.py --record``)."""
    print("| chapter | model | test acc: mean (min) over seeds | book | target (min) "
          "| train time per run | epochs | px | last maps | lr (chosen on validation) "
          "| precision | machine | split |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (notebook, title, book, target) in CHAPTERS.items():
        path = RESULTS / f"{name}.json"
        record = json.loads(path.read_text()) if path.exists() else {}
        runs = [s for s in record.get("seeds", []) if s.get("test_acc") is not None]
        if not runs:
            continue
        tests = [s["test_acc"] for s in runs]
        seconds = sorted(s["train_seconds"] for s in runs)[len(runs) // 2]
        minutes, rest = divmod(round(seconds), 60)
        met = " (met)" if min(tests) >= target else " (missed)"
        maps = record["maps"].get("global_pool") or record["maps"].get("last_conv")
        grid = ", ".join(f"{lr:g}" for lr in (record.get("sweep") or {}).get("lrs", []))
        print(f"| [{notebook}](notebooks/{notebook}.ipynb) | {title} "
              f"| {sum(tests) / len(tests):.3f} ({min(tests):.3f}){met}, {len(tests)} seeds "
              f"| {book} | {target} | {minutes}:{rest:02d} (median) | {record['epochs']} "
              f"| {record['resolution']} | {maps[0]}x{maps[1]} | {record['lr']:g} of {grid} "
              f"| {record['precision']} | {_machine(record)} "
              f"| {_split(record.get('data_split'))} |")


def _machine(record) -> str:
    flags = set(record.get("cpu_flags", []))
    kind = ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags
            else "AVX2 only")
    return f"{record['cpu_model'].split(',')[0]} ({kind})"


def _split(split) -> str:
    if not split:
        return "not recorded"
    return "official" if split.startswith("official") else "npm rebuild (not official)"


def league_rows(budget: str = "cpu") -> None:
    path = RESULTS / f"league-{budget}.json"
    if not path.exists():
        return
    rows = json.loads(path.read_text())
    first = rows[0]
    print(f"\nLeague ({budget} budget: {first['train_examples']:,} training images once at "
          f"72 px, {first['test_examples']:,} test; {first['cpu_model']}, "
          f"{first['threads']} thread(s), {_split(first['data_split'])}):\n")
    print("| net | test acc (mean +- s.e.) | seeds | wall s per run | training GFLOPs "
          "| parameters |")
    print("|---|---|---|---|---|---|")
    for row in league_table(rows):
        print(f"| {row['net']} | {row['mean']:.3f} +- {row['se']:.3f} | {row['seeds']} "
              f"| {row['wall_seconds']:.0f} | {row['training_flops'] / 1e9:,.0f} "
              f"| {row['parameters']:,} |")


if __name__ == "__main__":
    chapter_rows()
    league_rows()
