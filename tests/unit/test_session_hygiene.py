"""The test session cleans up after itself: a test that leaves a process running fails the run (and the process
is ended), and the tests' lock spaces live in pytest's own temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import SESSION_MARK
from tests.support import cli as cli_support

REPO = Path(__file__).resolve().parents[2]

LEAKY = '''
import subprocess, sys
from pathlib import Path

def test_leaves_a_process_behind():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    Path("pid").write_text(str(child.pid))
'''


def test_a_session_whose_test_leaves_a_process_running_fails_and_ends_that_process(tmp_path):
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    env = {k: v for k, v in os.environ.items() if k != SESSION_MARK}  # a session of its own, not this one
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                          "--rootdir", str(tmp_path), str(tmp_path / "test_leaky.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    pid = int((tmp_path / "pid").read_text())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "processes left running by the tests" in run.stdout
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the process left behind still runs"
        time.sleep(0.05)


FORKING = '''
from tests.conformance import kill

def test_forks_a_child_from_the_kill_harness_server():
    child = kill._SERVER.Process(target=print)
    child.start()
    child.join()
    assert child.exitcode == 0
'''


def test_the_kill_harness_fork_server_is_ended_with_the_session_and_never_counted_as_left_behind(tmp_path):
    (tmp_path / "test_forking.py").write_text(FORKING)
    env = {k: v for k, v in os.environ.items() if k != SESSION_MARK}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                          "--rootdir", str(tmp_path), str(tmp_path / "test_forking.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "processes left running" not in run.stdout


def test_the_tests_lock_spaces_are_in_pytests_temporary_directory(tmp_path_factory):
    env = cli_support.user_env({})
    assert Path(env["VIRTPLANE_LOCK_DIR"]).is_relative_to(tmp_path_factory.getbasetemp())
