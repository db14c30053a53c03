"""The README's Ray cluster recipe, on a head of the test's own."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import TINY

from reptile_rl.cli import main

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
TINY_ARGS = [arg for item in TINY for arg in ("--set", item)]
pytest.importorskip("ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_address_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    address = ["--set", "parallel.backend=ray", "--set", "parallel.address=127.0.0.1:9"]
    started = time.monotonic()
    assert main(["train", "navigation", *TINY_ARGS, *address, "--out", str(run)]) == 2
    assert time.monotonic() - started < 60
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "127.0.0.1:9" in error and "ray start --head" in error
    assert not run.exists()


@pytest.fixture
def ray_head():
    """`ray start --head --block` on a free port with its own temp dir; stopped after the test.

    Only this head is stopped (never `ray stop`, which would stop every Ray on the machine).
    """
    port = free_port()
    # Unix socket paths are short: the temp dir must be too.
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--temp-dir={temp_dir}",
            "--num-cpus=2",
            "--include-dashboard=false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "the head did not start"
                time.sleep(0.5)
        time.sleep(2)  # the raylet registers after the GCS answers
        yield f"127.0.0.1:{port}", temp_dir
    finally:
        head.terminate()  # --block: the head stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()


def test_the_cluster_recipe_trains_through_parallel_address(ray_head, tmp_path):
    address, temp_dir = ray_head
    run = tmp_path / "run"
    command = [sys.executable, "-m", "reptile_rl", "train", "navigation", *TINY_ARGS]
    command += ["--set", "parallel.backend=ray", "--set", f"parallel.address={address}"]
    command += ["--set", "parallel.workers=2", "--out", str(run), "--no-progress"]
    # The driver's environment as a user's shell has it: no RAY_AUTH_MODE set by hand.
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "meta_policy.safetensors").is_file()
    assert len((run / "progress.csv").read_text().splitlines()) == 3
    logs = list(Path(temp_dir).glob("session_*/logs"))
    assert logs, "the run did not go to the test's head"
