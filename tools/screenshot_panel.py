"""Screenshot the training panel in JupyterLab (headless Chromium) -> docs/panel.png.

Maintainer tool, not a test. It writes a small notebook into a temporary folder, starts
JupyterLab on a localhost port, and drives Debian's ``chromium`` with playwright-core:
run the cell, press Train, press Stop while it trains (checking that the click is
handled mid-run), train twice more, then screenshot the panel. It then saves the
notebook, renders it as nbviewer would (nbconvert, widget state dropped, as GitHub
sees a notebook) and screenshots the panel's static snapshot -> docs/panel_fallback.png.

Needs: ``apt-get install chromium`` and ``npm install playwright-core`` in some folder
(pass its ``node_modules`` with ``--node-modules``). Neither is needed by the tests.

Example:
    python tools/screenshot_panel.py --node-modules /tmp/pw/node_modules
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CELL = '''\
import torch
from torch import nn
from d2lcnn.widgets import TrainingPanel

torch.manual_seed(0)


def make_net(s):
    """LeNet for the chosen resolution: the Linear layer's input depends on it."""
    act = nn.ReLU if s.activation == "relu" else nn.Sigmoid
    side = (s.resize // 2 - 4) // 2  # conv5 (padding 2), pool, conv5, pool
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), act(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * side * side, 120), act(), nn.Linear(120, 84), act(),
        nn.Linear(84, 10),
    )


hp = dict(lr=0.1, num_epochs=4, batch_size=32, subset=2000, test_subset=500,
          source="mini", seed=0)
panel = TrainingPanel(make_net, defaults=hp, knobs={"activation": ["relu", "sigmoid"]},
                      title="LeNet training panel (bundled mini Fashion-MNIST, CPU)")
panel
'''

DRIVER = r"""
const { chromium } = require('playwright-core');
const [url, out, log, failed] = process.argv.slice(2);
const report = {};
let page;
(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-proxy-server'],
  });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(120000);
  await page.goto(url);
  await page.waitForSelector('.jp-Notebook .jp-Cell .cm-content');
  await page.locator('.jp-StatusBar-Widget', { hasText: '| Idle' }).waitFor();
  await page.click('.jp-Notebook .jp-Cell .cm-content');
  await page.keyboard.press('Shift+Enter');
  await page.locator('.jp-InputPrompt', { hasText: '[1]' }).waitFor();
  const train = page.locator('.jupyter-widgets button', { hasText: 'Train' });
  const stop = page.locator('.jupyter-widgets button', { hasText: 'Stop' });
  const status = () => page.locator('.widget-html-content', { hasText: /Run #|Ready/ })
    .last().innerText();
  await train.waitFor();
  // JupyterLab's "notify about news?" toast would cover the panel
  await page.getByRole('button', { name: 'No', exact: true }).first()
    .click({ timeout: 5000 }).catch(() => {});
  // 1) Stop mid-run: the click must be handled while the worker thread trains
  await train.click();
  await page.locator('.widget-html-content', { hasText: /training: 1\.[1-9]\d* of/ })
    .waitFor();
  report.before_stop = await status();
  const t0 = Date.now();
  await stop.click();
  await page.locator('.widget-html-content', { hasText: 'Run #1 stopped' }).waitFor();
  report.stop_to_stopped_ms = Date.now() - t0;
  report.after_stop = await status();
  // 2) a full run, then 3) one with a larger batch, for the comparison
  await train.click();
  await page.locator('.widget-html-content', { hasText: 'Run #2 completed' }).waitFor();
  await page.locator('.widget-dropdown', { hasText: 'batch size' }).locator('select')
    .selectOption('64');
  await train.click();
  await page.locator('.widget-html-content', { hasText: 'Run #3 completed' }).waitFor();
  report.final_status = await status();
  await page.waitForTimeout(1500);  // let the last PNG update paint
  const panel = page.locator('.jp-OutputArea-output').last();
  await panel.scrollIntoViewIfNeeded();
  await panel.screenshot({ path: out });
  // save: the saved output must hold the snapshot of the panel as last drawn
  await page.click('.jp-Notebook .jp-Cell .cm-content');
  await page.keyboard.press('Control+s');
  await page.waitForTimeout(3000);
  require('fs').writeFileSync(log, JSON.stringify(report, null, 1));
  await browser.close();
})().catch(async (e) => {
  console.error(e);
  if (page) await page.screenshot({ path: failed, fullPage: true }).catch(() => {});
  process.exit(1);
});
"""


FALLBACK_DRIVER = r"""
const { chromium } = require('playwright-core');
const [url, out] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-proxy-server'],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(url);
  await page.locator('.d2lcnn-panel-snapshot').first().screenshot({ path: out });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder: Path) -> Path:
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": CELL.splitlines(keepends=True)}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path = folder / "panel_demo.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def wait_for_server(url: str, timeout: float = 120) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opener.open(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout} s")


def shoot_fallback(folder: Path, out: Path, env: dict) -> str:
    """The saved notebook as a reader without a kernel sees it; returns its status."""
    import nbformat

    notebook = nbformat.read(folder / "panel_demo.ipynb", as_version=4)
    notebook.metadata.pop("widgets", None)  # GitHub and a plain nbviewer have none
    pages = [o["data"]["text/html"] for o in notebook.cells[0].outputs
             if "text/html" in o.get("data", {})]
    last = pages[-1] if pages else ""
    if "Run #3 completed" not in last:
        raise RuntimeError(
            "the saved panel output does not hold the last run's snapshot")
    nbformat.write(notebook, folder / "saved.ipynb")
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                    str(folder / "saved.ipynb")], env=env, check=True, timeout=120)
    (folder / "fallback.js").write_text(FALLBACK_DRIVER)
    subprocess.run(["node", str(folder / "fallback.js"),
                    (folder / "saved.html").as_uri(), str(out)],
                   env=env, check=True, timeout=120)
    return "the saved output holds the snapshot of run #3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", required=True,
                        help="folder holding playwright-core")
    parser.add_argument("--out", default=str(ROOT / "docs" / "panel.png"))
    parser.add_argument("--fallback-out",
                        default=str(ROOT / "docs" / "panel_fallback.png"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (notebook, JupyterLab log)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="panel_shot_"))
    print(f"working in {folder}")
    try:
        write_notebook(folder)
        (folder / "driver.js").write_text(DRIVER)
        port = free_port()
        # a fresh config folder: the user's Jupyter settings do not leak in
        env = dict(os.environ, PYTHONPATH=str(ROOT),
                   JUPYTER_CONFIG_DIR=str(folder / "cfg"), OMP_NUM_THREADS="1")
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
             "--ServerApp.password=", f"--ServerApp.root_dir={folder}",
             "--allow-root"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "lab.log", "w"),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_server(f"{base}/api")
            log = folder / "report.json"
            subprocess.run(
                ["node", str(folder / "driver.js"), f"{base}/lab/tree/panel_demo.ipynb",
                 str(out), str(log), str(folder / "failed.png")],
                env=dict(env, NODE_PATH=args.node_modules), check=True, timeout=600,
            )
            print(log.read_text())
        finally:
            server.terminate()
            server.wait(timeout=30)
        fallback = Path(args.fallback_out).resolve()
        print(shoot_fallback(folder, fallback, dict(env, NODE_PATH=args.node_modules)))
        print(f"wrote {fallback} ({fallback.stat().st_size / 1024:.0f} KB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
