"""Print the README's results table from the recorded chapter runs.

Usage: python tools/results_table.py   (reads notebooks/results/*.json via load_results)
"""

from pathlib import Path

from d2lcnn.results import load_results

RESULTS = Path(__file__).resolve().parent.parent / "notebooks" / "results"

CHAPTERS = {  # registry name -> (notebook, what it is)
    "lenet": ("01_lenet", "LeNet-5 (sigmoid, avg pooling)"),
    "lenet_modern": ("01_lenet", "LeNet, modernised (ReLU, max pooling)"),
    "alexnet": ("02_alexnet", "AlexNet"),
    "vgg11": ("03_vgg", "VGG-11, narrow (ratio 4)"),
    "nin": ("04_nin", "NiN"),
    "googlenet": ("05_googlenet", "GoogLeNet"),
    "lenet_bn": ("06_batchnorm", "LeNet with batch normalization"),
    "resnet18": ("07_resnet", "ResNet-18"),
    "densenet": ("08_densenet", "DenseNet"),
    "mobilenet_v1": ("09_mobilenet", "MobileNet v1"),
}


def main() -> None:
    records = load_results(RESULTS)
    print("| chapter | model | test acc | epochs | images/epoch | px | precision "
          "| profile | device | wall time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (notebook, title) in CHAPTERS.items():
        if name not in records:
            continue
        record = records[name]
        history = record["history"]
        settings = history.settings
        images = round(history.examples_per_sec_e2e[-1] * history.wall_time[-1], -2)
        resize = settings.get("resize")
        px = resize[0] if resize else 28
        minutes, seconds = divmod(round(sum(history.wall_time)), 60)
        print(f"| [{notebook}](notebooks/{notebook}.ipynb) | {title} "
              f"| {history.test_acc[-1]:.3f} | {len(history)} | {images:,.0f} | {px} "
              f"| {settings.get('precision', 'fp32')} | {record['profile']} "
              f"| {record['device_name']} | {minutes}:{seconds:02d} |")


if __name__ == "__main__":
    main()
