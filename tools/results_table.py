"""Print the README's results tables: the chapters' recorded runs next to the book's
numbers, and the league (one budget per tier, each net's lr chosen on validation, mean
with its 95 % t interval over seeds, the paired tests between neighbours).

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
    """The league (benchmarks/league.py) per tier: mean test accuracy with its 95 % t
    interval over seeds, the lowest seed, the lr chosen on validation, the costs; then
    which gaps between neighbours in the ranking are beyond noise, and by which test."""
    from benchmarks.league import TIERS, paired_gaps

    path = RESULTS / f"league-{budget}.json"
    if not path.exists():
        return
    rows = json.loads(path.read_text())
    if not rows or not all("tier" in r and r.get("selected_on") for r in rows):
        print(f"\n{path.name}: written by an older league; move it to "
              f"{path.stem}-old.json and run benchmarks/league.py again")
        return
    first = rows[0]
    print(f"\nLeague ({budget} budget; {_machine(first)}, "
          f"{first['threads']} thread(s) per run, {_split(first['data_split'])}; lr chosen "
          f"on {first['valid_images']:,} validation images, test set read once per run):")
    table = league_table(rows)
    for tier in dict.fromkeys(t["tier"] for t in table):
        spec = next(r["spec"] for r in rows if r["tier"] == tier)
        print(f"\nTier {tier}: {TIERS[tier]} px, {spec['images']:,} training images x "
              f"{spec['passes']}, batch {spec['batch_size']}, "
              f"{spec['images'] * spec['passes'] // spec['batch_size']} steps\n")
        print("| net | BN | test acc: mean ± 95 % t (min) | seeds | lr | parameters "
              "| MFLOPs per training image | train s (median) | latency ms, batch 1 / 64 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for t in sorted((t for t in table if t["tier"] == tier), key=lambda t: -t["mean"]):
            latency = (f"{t['latency_ms_1']:.2f} ({t['latency_format_1']}) / "
                       f"{t['latency_ms_64']:.1f} ({t['latency_format_64']})"
                       if t["latency_ms_1"] is not None else "-")
            print(f"| {t['net']} | {'yes' if t['bn'] else 'no'} | {t['mean']:.3f} ± "
                  f"{t['half_width']:.3f} ({t['min']:.3f}) | {t['seeds']} | {t['lr']:g} "
                  f"| {t['parameters']:,} | {t['flops_per_example'] / 1e6:,.1f} "
                  f"| {t['train_seconds']:.0f} | {latency} |")
        gaps = paired_gaps(rows, tier)
        if gaps:
            print(f"\nNeighbours in the ranking ({gaps[0]['test']}):\n")
        for gap in gaps:
            verdict = "beyond noise" if gap["beyond_noise"] else "within noise"
            print(f"- {gap['better']} over {gap['worse']}: {verdict} "
                  f"({gap['difference']:+.3f} ± {gap['half_width']:.3f}; McNemar p < 0.05 "
                  f"on {gap['mcnemar_beyond']} of {gap['seeds']} seeds)")


if __name__ == "__main__":
    chapter_rows()
    league_rows()
