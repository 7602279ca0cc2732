"""Every registered model: (2, 10) outputs at its chapter's resolution, a backward pass,
and the parameter count its chapter notebook prints in its committed shape table."""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import d2lcnn
from d2lcnn.settings import get_model, list_models

ROOT = Path(__file__).resolve().parents[1]
TABLE = re.compile(r"Input shape: \((\d+), (\d+), (\d+), (\d+)\)\n(?:.*\n)*?Params: ([\d,]+) \(")

torch.set_num_threads(1)


@dataclass(frozen=True)
class PrintedTable:
    """One ``layer_summary`` output of a notebook and the net it was called on."""

    builder: str | None  # e.g. "alexnet", None when the net is not a builder call
    kwargs: dict
    input_shape: tuple[int, ...]
    params: int


def _literal_call(node: ast.AST) -> tuple[str, dict] | None:
    """``alexnet(resolution=224)`` -> ("alexnet", {"resolution": 224}); else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    try:
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError:
        return None
    return (node.func.id, kwargs) if not node.args and None not in kwargs else None


def _summary_calls(statement: ast.stmt, nets: dict) -> list[tuple]:
    calls = []
    for node in ast.walk(statement):
        name = getattr(getattr(node, "func", None), "attr", None) or getattr(
            getattr(node, "func", None), "id", None
        )
        if name != "layer_summary" or len(node.args) < 2:
            continue
        net = node.args[0]
        built = nets.get(net.id) if isinstance(net, ast.Name) else _literal_call(net)
        calls.append(built or (None, {}))
    return calls


def printed_tables(notebook: Path) -> list[PrintedTable]:
    """The shape tables a committed notebook shows, each with the call that made it."""
    tables, nets = [], {}  # nets: variable -> the builder call last assigned to it
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # magics
            continue
        calls = []
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                continue  # a helper's summaries are not this cell's
            calls += _summary_calls(statement, nets)
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, built = statement.targets[0], _literal_call(statement.value)
                if isinstance(target, ast.Name):
                    nets[target.id] = built
        text = "".join(
            "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            for out in cell.get("outputs", [])
        )
        found = TABLE.findall(text)
        if len(found) == len(calls):  # pair only when each call printed one table
            for (builder, kwargs), (*shape, params) in zip(calls, found):
                shape = tuple(int(d) for d in shape)
                tables.append(PrintedTable(builder, kwargs, shape, int(params.replace(",", ""))))
    return tables


# name -> module of every registered model; the chapters' are generated from notebooks
# (other tests may register small nets of their own)
MODULES = {name: sys.modules[type(get_model(name)).__module__] for name in list_models()}
MODELS = [name for name, module in MODULES.items()
          if module.__name__.startswith("d2lcnn.models.")]


def model_chapter(name: str) -> str:
    """The notebook that defines model ``name`` (its generated module's header)."""
    return re.search(r"^Defined in (\S+\.ipynb)$", MODULES[name].__doc__, re.M).group(1)


def chapter_table(name: str) -> tuple[int, PrintedTable | None]:
    """(chapter resolution, the table printed for ``name`` built by its builder)."""
    tables = printed_tables(ROOT / model_chapter(name))
    grey = [t for t in tables if t.input_shape[:2] == (1, 1)]
    own = [t for t in grey if t.builder == name]
    if own:
        return own[0].input_shape[2], own[0]
    assert grey, f"{model_chapter(name)} prints no shape table for a 1-channel input"
    return grey[0].input_shape[2], None  # the chapter's resolution, no own table


def test_every_chapter_model_is_registered():
    assert {"lenet", "alexnet", "vgg11", "nin", "googlenet", "lenet_bn", "resnet18",
            "densenet", "mobilenet_v1"} <= set(MODELS)  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_backward_at_the_chapters_resolution(name):
    side, _ = chapter_table(name)
    torch.manual_seed(0)
    net = get_model(name)
    X, y = torch.rand(2, 1, side, side), torch.tensor([3, 7])
    y_hat = net(X)
    assert y_hat.shape == (2, 10)
    nn.functional.cross_entropy(y_hat, y).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_the_chapters_printed_table(name):
    _, table = chapter_table(name)
    if table is None:
        pytest.skip(f"{model_chapter(name)} prints no shape table for {name}()")
    net = get_model(name, **table.kwargs)
    assert d2lcnn.count_params(net) == table.params, (
        f"{name}: {d2lcnn.count_params(net):,} parameters, but {model_chapter(name)} "
        f"prints {table.params:,}; re-run the chapter or fix the #@save cell"
    )


def test_printed_tables_pairs_calls_and_outputs(tmp_path):
    cell = {
        "cell_type": "code",
        "source": ["net = lenet()\n", "d2l.layer_summary(net, (1, 1, 28, 28))"],
        "outputs": [{"output_type": "execute_result", "data": {"text/plain": [
            "Input shape: (1, 1, 28, 28)\n", "Layer (type)\n", "Params: 61,706 (61,706 "
            "trainable)  FLOPs"]}}],
    }  # fmt: skip
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text(json.dumps({"cells": [cell]}))
    assert printed_tables(notebook) == [PrintedTable("lenet", {}, (1, 1, 28, 28), 61_706)]
