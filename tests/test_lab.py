"""`make lab` starts a JupyterLab that answers on 127.0.0.1, as root and as a normal user.

Runs the Makefile's own `lab` recipe (with `-o` so it installs nothing) on a free port with a
known token, polls the server, then stops the process group it started.
"""

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)  # the environment running the tests, as `make` would use it
TOKEN = "d2lcnn-lab-test"
ROOT_LINE = "running as root, so JupyterLab gets --allow-root"
TEST_USER = "d2lcnn-labtest"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("jupyterlab") is None
    or not (VENV / "bin" / "jupyter").exists()
    or shutil.which("make") is None,
    reason="JupyterLab is not installed here (make lab or make test installs it)",
)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def _run_make_lab(tmp_path: Path, prefix: list[str]) -> tuple[dict, str]:
    """Start `make lab` (behind `prefix`, e.g. runuser), wait until it answers, stop it."""
    port = _free_port()
    jupyter_dirs = {  # keep the server away from the user's own config and settings
        "JUPYTER_CONFIG_DIR": tmp_path / "config",
        "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
        "JUPYTER_DATA_DIR": tmp_path / "data",
        "JUPYTERLAB_SETTINGS_DIR": tmp_path / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": tmp_path / "workspaces",
    }
    env_args = [f"HOME={tmp_path}"] + [f"{k}={v}" for k, v in jupyter_dirs.items()]
    lab_args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.token={TOKEN}"
    command = prefix + ["env", *env_args, "make", "--no-print-directory",
                        "-o", f"{VENV}/.installed-lab+test", "lab",
                        f"VENV={VENV}", f"LAB_ARGS={lab_args}"]
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        status = None
        for _ in range(240):  # up to ~60 s on a busy machine; usually a few seconds
            if proc.poll() is not None:
                pytest.fail(f"make lab exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                code, body = _get(f"http://127.0.0.1:{port}/api/status")
                status = json.loads(body) if code == 200 else None
            except OSError:
                status = None
            if status is not None:
                break
            try:
                proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                pass
        assert status is not None, f"no answer on port {port}:\n{log_path.read_text()}"
        # JupyterLab itself (not only the bare server) is served, on the notebooks folder
        code, page = _get(f"http://127.0.0.1:{port}/lab")
        assert code == 200 and b"JupyterLab" in page
        _, listing = _get(f"http://127.0.0.1:{port}/api/contents")
        names = {item["name"] for item in json.loads(listing)["content"]}
        assert "00_tour.ipynb" in names, names
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return status, log_path.read_text()


def test_make_lab_serves_as_the_current_user(tmp_path):
    status, log = _run_make_lab(tmp_path, [])
    assert "started" in status
    # the root line appears exactly when it applies
    assert (ROOT_LINE in log) == (os.geteuid() == 0), log


@pytest.fixture
def normal_user():
    """A throwaway unprivileged account; only when running as root with runuser."""
    if os.geteuid() != 0:
        pytest.skip("already a normal user: the other test covers it")
    if not (shutil.which("runuser") and shutil.which("useradd") and shutil.which("userdel")):
        pytest.skip("runuser/useradd not found: cannot try make lab as a normal user")
    created = False
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                        TEST_USER], check=True)
        created = True
    try:
        yield TEST_USER
    finally:
        if created:
            subprocess.run(["userdel", TEST_USER], check=False)


def test_make_lab_serves_as_a_normal_user(normal_user):
    prefix = ["runuser", "-u", normal_user, "--"]
    # the venv's interpreter may live in root's home (pyenv), out of other users' reach
    usable = subprocess.run(prefix + [str(VENV / "bin" / "python"), "-c",
                                      f"open({str(ROOT / 'Makefile')!r}); import jupyterlab"],
                            capture_output=True, text=True)
    if usable.returncode != 0:
        reason = (usable.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"{normal_user} cannot run {VENV}/bin/python on this checkout: {reason}")
    # pytest's tmp_path lies under a root-only folder, so the user gets its own
    home = Path(tempfile.mkdtemp(prefix="d2lcnn-lab-"))
    try:
        shutil.chown(home, user=normal_user)
        status, log = _run_make_lab(home, prefix)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert "started" in status
    assert ROOT_LINE not in log, log
