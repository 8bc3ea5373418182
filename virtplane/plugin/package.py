"""Package the plugin for use outside this repository (docs/pulumi.md, "Installing outside this repository"):

    python -m virtplane.plugin.package --out dist [--server URL]

writes

- ``virtplane-<version>-py3-none-any.whl``: the core, as ``pip wheel`` builds it; with ``--server`` its
  ``virtplane/pulumi-plugin.json`` names that URL (``"server"``): a program importing ``virtplane`` then makes
  ``pulumi up`` download the plugin from there when it is not installed — Pulumi fetches
  ``<server>/pulumi-resource-virtplane-v<version>-<os>-<arch>.tar.gz``, which is what the next item is, and the
  package schema's ``pluginDownloadURL`` says the same;
- ``pulumi-resource-virtplane-v<version>-<os>-<arch>.tar.gz`` for Linux, macOS and Windows on amd64 and arm64: a
  plugin folder (``PulumiPlugin.yaml`` with ``runtime: python``, ``__main__.py``, ``requirements.txt`` naming the
  wheel, and the wheel), the same for every platform since the plugin is Python. Pulumi's Python language host
  makes the folder's virtualenv and installs ``requirements.txt`` into it when the plugin is installed:
  ``pulumi plugin install resource virtplane <version> --file <tarball>``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from virtplane.plugin import VERSION

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = [(os_name, arch) for os_name in ("linux", "darwin", "windows") for arch in ("amd64", "arm64")]
PLUGIN_JSON = "virtplane/pulumi-plugin.json"
FOLDER_FILES = {
    "PulumiPlugin.yaml": ("# pulumi-resource-virtplane as a plugin folder: Pulumi's Python language host runs\n"
                          "# `python <this folder> ARGS` in the virtualenv below, made when the plugin is installed\n"
                          "# and given requirements.txt (docs/pulumi.md).\n"
                          "runtime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: venv\n"),
    "__main__.py": ('"""pulumi-resource-virtplane: the same server as the console script of the virtplane '
                    'package."""\n\nfrom virtplane.plugin.__main__ import main\n\nmain()\n'),
}


def tarball_name(version: str, os_name: str, arch: str) -> str:
    return f"pulumi-resource-virtplane-v{version}-{os_name}-{arch}.tar.gz"


def build(out: Path, server: str | None = None, source: Path = REPO) -> list[Path]:
    """Build the wheel and the plugin tarballs into ``out``; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        scratch, str(source)], check=True)
        [built] = Path(scratch).glob("virtplane-*.whl")
        wheel = out / built.name
        _copy_wheel(built, wheel, server)
    written = [wheel]
    for os_name, arch in PLATFORMS:
        path = out / tarball_name(VERSION, os_name, arch)
        _write_folder(path, wheel)
        written.append(path)
    return written


def _copy_wheel(built: Path, target: Path, server: str | None) -> None:
    """Copy the wheel, with ``server`` in its pulumi-plugin.json (and its RECORD line) when given."""
    with zipfile.ZipFile(built) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        record_name = next(name for name in source.namelist() if name.endswith(".dist-info/RECORD"))
        replaced: dict[str, bytes] = {}
        if server:
            document = json.loads(source.read(PLUGIN_JSON))
            document["server"] = server
            replaced[PLUGIN_JSON] = (json.dumps(document) + "\n").encode()
        for info in source.infolist():
            if info.filename == record_name:
                continue
            copy.writestr(info, replaced.get(info.filename, source.read(info.filename)))
        copy.writestr(record_name, _record(source.read(record_name).decode(), replaced))


def _record(record: str, replaced: dict[str, bytes]) -> str:
    lines = []
    for line in record.splitlines():
        name = line.split(",", 1)[0]
        if name in replaced:
            digest = base64.urlsafe_b64encode(hashlib.sha256(replaced[name]).digest()).rstrip(b"=").decode()
            line = f"{name},sha256={digest},{len(replaced[name])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _write_folder(path: Path, wheel: Path) -> None:
    files = {**FOLDER_FILES, "requirements.txt": f"./{wheel.name}\n"}
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            _add(archive, name, text.encode())
        _add(archive, wheel.name, wheel.read_bytes())


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where to write (default: dist)")
    parser.add_argument("--server", default=None,
                        help="the URL the plugin tarballs are published under (pulumi-plugin.json's server)")
    args = parser.parse_args(argv)
    for path in build(args.out, args.server):
        print(path)


if __name__ == "__main__":
    main()
