"""The plugin packaged for use outside this repository (virtplane/plugin/package.py): a wheel whose
pulumi-plugin.json names where the plugin is downloaded from, and plugin tarballs `pulumi plugin install --file`
takes, whose folder serves the plugin as Pulumi's Python language host runs it (`python <folder> ADDR`)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile

from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from tests.support.plugin import Plugin, as_dict
from virtplane.plugin import VERSION
from virtplane.plugin.package import PLATFORMS, build, tarball_name

SERVER = "https://downloads.example.org/virtplane/v0.1.0"


def test_a_release_build_writes_a_wheel_naming_its_download_server_and_a_plugin_tarball_per_platform(tmp_path):
    written = build(tmp_path / "dist", SERVER)
    wheel = written[0]
    assert [path.name for path in written[1:]] == [tarball_name(VERSION, *platform) for platform in PLATFORMS]
    with zipfile.ZipFile(wheel) as archive:
        plugin_json = archive.read("virtplane/pulumi-plugin.json")
        record = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    assert json.loads(plugin_json) == {"resource": True, "name": "virtplane", "version": VERSION, "server": SERVER}
    digest = base64.urlsafe_b64encode(hashlib.sha256(plugin_json).digest()).rstrip(b"=").decode()
    assert f"virtplane/pulumi-plugin.json,sha256={digest},{len(plugin_json)}" in record.splitlines()

    with tarfile.open(written[1]) as archive:
        names = sorted(archive.getnames())
        requirements = archive.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
        archive.extractall(tmp_path / "resource-virtplane", filter="data")
    assert names == sorted(["PulumiPlugin.yaml", "__main__.py", "requirements.txt", wheel.name])
    assert requirements == f"./{wheel.name}\n"

    # As Pulumi runs the installed folder: `python <folder> ADDR`, in a virtualenv holding the wheel (here: the
    # wheel installed over this one's packages).
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(tmp_path / "resource-virtplane" / wheel.name)], check=True)
    folder = Plugin(tmp_path / "run", {"PYTHONPATH": str(target)},
                    command=[sys.executable, str(tmp_path / "resource-virtplane")])
    try:
        assert as_dict(folder.call("GetPluginInfo", empty_pb2.Empty()))["version"] == VERSION
        schema = json.loads(folder.call("GetSchema", provider_pb2.GetSchemaRequest(version=0)).schema)
    finally:
        folder.stop()
    assert schema["pluginDownloadURL"] == SERVER
    assert schema["language"]["python"]["packageName"] == "virtplane"


def test_a_build_without_a_server_leaves_the_plugin_to_a_local_install(tmp_path):
    [wheel, *_] = build(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        assert "server" not in json.loads(archive.read("virtplane/pulumi-plugin.json"))
