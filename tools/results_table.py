"""Print the README's results tables: the chapters' recorded runs next to the book's
numbers, and the league (one budget for all nets, mean +- standard error over seeds).

Usage: python tools/results_table.py   (reads notebooks/results/*.json)
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks/
from benchmarks.league import league_table  # noqa: E402
from d2lcnn.results import load_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "notebooks" / "results"

# registry name -> (notebook, what it is, the book's test accuracy: d2l-zh / d2l-en builds,
# V100, 10 epochs, official split, as issue 17 lists them; the cpu target)
CHAPTERS = {
    "lenet": ("01_lenet", "LeNet-5 (sigmoid, avg pooling)", "0.779 / 0.789", 0.78),
    "lenet_modern": ("01_lenet", "LeNet, modernised (ReLU, max pooling)", "-", None),
    "alexnet": ("02_alexnet", "AlexNet", "0.883 / 0.882", 0.88),
    "vgg11": ("03_vgg", "VGG-11, narrow (ratio 4)", "0.920 / 0.922", 0.92),
    "nin": ("04_nin", "NiN", "0.790 / 0.785", 0.79),
    "googlenet": ("05_googlenet", "GoogLeNet", "0.886 / 0.883", 0.88),
    "lenet_bn": ("06_batchnorm", "LeNet with batch normalization", "0.807 / 0.838", 0.82),
    "resnet18": ("07_resnet", "ResNet-18", "0.893 / 0.918", 0.90),
    "densenet": ("08_densenet", "DenseNet", "0.885 / 0.821", 0.85),
    "mobilenet_v1": ("09_mobilenet", "MobileNet v1", "(not in the book)", 0.90),
}


def chapter_rows() -> None:
    records = load_results(RESULTS)
    print("| chapter | model | test acc | book | target | train time | epochs x images "
          "| px | precision | recipe | profile | machine | split |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (notebook, title, book, target) in CHAPTERS.items():
        if name not in records:
            continue
        record = records[name]
        history = record["history"]
        settings = history.settings
        images = settings.get("train_examples") or round(
            history.examples_per_sec_e2e[-1] * history.wall_time[-1], -2)
        resize = settings.get("resize")
        minutes, seconds = divmod(round(sum(history.wall_time)), 60)
        acc = history.test_acc[-1]
        met = "" if target is None else (" (met)" if acc >= target else " (missed)")
        print(f"| [{notebook}](notebooks/{notebook}.ipynb) | {title} | {acc:.3f}{met} "
              f"| {book} | {target or '-'} | {minutes}:{seconds:02d} "
              f"| {len(history)} x {images:,.0f} | {resize[0] if resize else 28} "
              f"| {settings.get('precision', 'fp32')} | {_recipe(settings.get('recipe'))} "
              f"| {record['profile']} | {_machine(record)} "
              f"| {_split(record.get('data_split'))} |")


def _machine(record) -> str:
    return (record.get("cpu_model") or record["device_name"]).split(" (")[0]


def _recipe(recipe) -> str:
    if not recipe:
        return "book's (plain SGD)"
    return (f"{'Nesterov ' if recipe['nesterov'] else ''}{recipe['momentum']}, wd "
            f"{recipe['weight_decay']:g}, {recipe['schedule']}, ls "
            f"{recipe['label_smoothing']}, {recipe['init']}")


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
