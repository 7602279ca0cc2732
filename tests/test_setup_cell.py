"""Each notebook's setup cell: the same everywhere, short, and helpful where pip cannot install.

The behaviour tests run the cell's text up to its imports (no torch needed) in a Python
without site-packages (`-S`), so d2lcnn looks missing as on a fresh Colab or Kaggle machine;
`sys.executable` is a fake pip that fails the way pip does without internet, and writes
down that it was called. They read the cell through `setup_cell()`, so the same checks run
on a proposed cell text as well (point `setup_cell` at a file holding it).
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_LINES = 6  # every line counts, the NBVAL marker too
PIP_WITHOUT_INTERNET = """#!/bin/sh
echo called >> "$(dirname "$0")/pip-calls"
echo "  error: subprocess-exited-with-error" >&2
echo "  fatal: unable to access 'https://github.com/d2lcnn/d2lcnn/': \
Could not resolve host: github.com" >&2
echo "note: This error originates from a subprocess" >&2
exit 1
"""


def _setup_source(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code").source


def setup_cell() -> str:
    """The setup cell's text (the first notebook's: the first test checks that all agree)."""
    return _setup_source(NOTEBOOKS[0])


def test_every_notebook_has_the_same_setup_cell():
    sources = {path.name: _setup_source(path) for path in NOTEBOOKS}
    assert len(sources) >= 11
    first = sources[NOTEBOOKS[0].name]
    different = [name for name, source in sources.items() if source != first]
    assert not different, f"setup cells differ from {NOTEBOOKS[0].name}: {different}"


def test_the_setup_cell_is_short_and_imports_last():
    source = setup_cell()
    lines = source.splitlines()
    assert source.startswith("# NBVAL_IGNORE_OUTPUT\n")  # versions and device vary
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines, at most {MAX_LINES}:\n{source}"
    assert all(len(line) <= 88 for line in lines), [x for x in lines if len(x) > 88]
    assert lines[-1].startswith("import torch, d2lcnn as d2l")  # then versions, device
    assert all(word in lines[-1] for word in ("print", "__version__", "try_gpu"))


def _run_setup_until_imports(tmp_path: Path, kaggle_input: Path,
                             importable: bool = False) -> tuple[str, bool]:
    """Run the setup cell (Kaggle folder moved to `kaggle_input`) up to `import torch`.

    `importable`: d2lcnn can be imported from this checkout, as where it is installed.
    """
    head, sep, _ = setup_cell().partition("import torch, d2lcnn as d2l")
    assert sep, "the setup cell should import torch and d2lcnn last"
    assert "/kaggle/input" in head
    head = head.replace("/kaggle/input", str(kaggle_input))
    fake_python = tmp_path / "bin" / "python"
    fake_python.parent.mkdir()
    fake_python.write_text(PIP_WITHOUT_INTERNET)
    fake_python.chmod(0o755)
    runner = (
        f"import sys\nsys.executable = {str(fake_python)!r}\n"
        + (f"sys.path.insert(0, {str(ROOT)!r})\n" if importable else "")
        + f"exec(compile({head!r}, 'setup cell', 'exec'))\n"
        "import importlib.util\n"
        "spec = importlib.util.find_spec('d2lcnn')\n"
        "print('d2lcnn from', spec.origin if spec else None)\n"
    )
    # cwd: not the checkout, or d2lcnn would be importable from it
    result = subprocess.run([sys.executable, "-S", "-c", runner], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout, (fake_python.parent / "pip-calls").exists()


def test_without_internet_the_setup_cell_says_what_to_do(tmp_path):
    out, pip_called = _run_setup_until_imports(tmp_path, tmp_path / "no-kaggle-here")
    assert pip_called
    assert "pip failed" in out
    assert "note: This error originates" not in out  # not pip's trace
    # what to do on Kaggle, where internet is off by default
    assert "Settings > Internet on" in out
    assert "as a dataset" in out
    assert len(out.splitlines()) == 2  # the message, and the runner's line below
    assert "d2lcnn from None" in out


@pytest.mark.parametrize("folder", ["d2lcnn", "my-copy-of-d2lcnn"])
def test_a_copy_added_as_kaggle_dataset_is_used_without_pip(tmp_path, folder):
    kaggle_input = tmp_path / "input"
    package = kaggle_input / folder / "d2lcnn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (kaggle_input / "fashionmnist").mkdir()  # another input beside it changes nothing
    out, pip_called = _run_setup_until_imports(tmp_path, kaggle_input)
    assert not pip_called
    assert out == f"d2lcnn from {package / '__init__.py'}\n"


def test_where_d2lcnn_is_installed_nothing_happens(tmp_path):
    out, pip_called = _run_setup_until_imports(tmp_path, tmp_path / "no-kaggle-here",
                                               importable=True)
    assert not pip_called
    assert out == f"d2lcnn from {ROOT / 'd2lcnn' / '__init__.py'}\n"
