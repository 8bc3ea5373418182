"""The command starts light, keeps secrets out of debug tracebacks and stays quiet when its reader leaves."""

import json
import subprocess
import sys

import pytest

from virtplane import cli, redact


def test_the_cli_module_loads_without_pulumi_pydantic_or_the_drivers():
    code = ("import sys, virtplane.cli; "
            "print([m for m in ('pulumi', 'pydantic', 'pyVmomi', 'proxmoxer', 'rich') if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_debug_traceback_masks_every_registered_secret(monkeypatch, capsys):
    monkeypatch.setenv("VIRTPLANE_DEBUG", "1")
    redact.register("hunter2-secret")

    def failing() -> int:
        raise RuntimeError("login with hunter2-secret failed")

    with pytest.raises(SystemExit) as exited:
        cli.guarded(failing)()
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert "Traceback" in err and "RuntimeError" in err
    assert "hunter2-secret" not in err and "***" in err




@pytest.mark.parametrize("as_program", [False, True], ids=["in-process", "as-the-command"])
def test_json_output_cut_short_by_its_reader_prints_nothing_on_stderr_whichever_way_the_command_exits(as_program):
    code = ("import sys; from virtplane import cli\n"
            f"cli._as_program = {as_program}\n"
            "def big() -> int:\n"
            "    for _ in range(20000): cli._emit(" + repr(json.dumps({"line": "x" * 80})) + ")\n"
            "    return 0\n"
            "cli.guarded(big)()\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    writer.stdout.readline()
    writer.stdout.close()
    _, err = writer.communicate(timeout=60)
    assert err == b""
    assert writer.returncode == 0


def test_the_command_flushes_all_its_output_and_runs_exit_handlers_though_it_skips_the_interpreters_teardown(
        tmp_path):
    marker = tmp_path / "exit-handler-ran"
    code = ("import atexit, pathlib, sys; from virtplane import cli\n"
            f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
            "class Noisy:\n"
            "    def __del__(self): sys.stderr.write('teardown ran\\n')\n"
            "kept = Noisy()\n"
            "def many() -> int:\n"
            "    for n in range(5000): cli._emit(str(n))\n"
            "    return 2\n"
            "sys.argv = ['virtplane', 'drift']\n"
            "cli._as_program = True\n"
            "cli.guarded(many)()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout.split() == [str(n) for n in range(5000)]
    assert marker.read_text() == "yes"
    assert "teardown ran" not in done.stderr  # module globals are never freed one by one
