"""Print the size of every module of d2lcnn and any function over a limit.

Usage: python tools/sizes.py [--limit 79]   (generated models/ are listed, not checked)

The budgets are the before-stop hook's: modules up to 400 lines, functions under 80.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "d2lcnn"


def long_functions(path: Path, limit: int) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append((node.name, length))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=79)
    parser.add_argument("--module-limit", type=int, default=400)
    args = parser.parse_args()
    total = over = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        total += lines
        rel = path.relative_to(PACKAGE.parent)
        generated = "models" in path.parts
        notes = [] if generated else [f"{n}() {k} lines" for n, k in
                                      long_functions(path, args.limit)]
        if not generated and lines > args.module_limit:
            notes.insert(0, f"module over {args.module_limit}")
        over += bool(notes)
        print(f"{lines:5d}  {rel}" + (f"   <- {'; '.join(notes)}" if notes else ""))
    print(f"{total:5d}  total")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
