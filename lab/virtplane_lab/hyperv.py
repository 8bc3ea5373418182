"""Start and stop the lab's Hyper-V endpoint (``virtplane_lab.hypervsim``, run in its own process).

With ``switch`` the launcher creates that internal VM switch on the new host over WinRM/PSRP (pypsrp's
``New-VMSwitch -Name <switch> -SwitchType Internal``, as an administrator would), so networks, which are VLANs
on the endpoint's switch, have one to live on. With ``dismount`` it gives those devices (location paths) up from
the host as Microsoft's DDA page has an administrator do once: find the device by its location path
(``Get-PnpDevice | Get-PnpDeviceProperty -KeyName DEVPKEY_Device_LocationPaths``), ``Disable-PnpDevice
-InstanceId <id> -Confirm:$false``, then ``Dismount-VMHostAssignableDevice -LocationPath <path> -Force``, so they
are assignable and the inventory lists them."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from virtplane.errors import VirtplaneError
from virtplane_lab import process

USER = "virtplane"


@dataclass(kw_only=True)
class HypervInstance(process.Simulator):
    """A running simulated Hyper-V host; ``server`` is ``host:port``; ``ca_file`` is empty over plain HTTP."""

    password_variable: ClassVar[str] = "HYPERV_PASSWORD"

    server: str
    host_name: str
    control_url: str
    command_log: str
    switch: str = ""  # the VM switch created at start ("" when none)
    user: str = USER

    @property
    def tls(self) -> bool:
        return bool(self.ca_file)

    @property
    def port(self) -> int:
        return int(self.server.rsplit(":", 1)[1])

    def settings(self) -> dict[str, str]:
        settings = {"HYPERV_SERVER": self.server, "HYPERV_USERNAME": self.user,
                    "HYPERV_TLS": "true" if self.tls else "false"}
        if self.ca_file:
            settings["HYPERV_CA_FILE"] = self.ca_file
        if self.switch:
            settings["HYPERV_SWITCH"] = self.switch
        return settings

    def control(self, action: str, **payload: Any) -> dict[str, Any]:
        """Call the simulator's control endpoint: ``fault`` (drop=cmdlet, times, slow=cmdlet, seconds),
        ``clear``, ``reboot``, ``state``."""
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        request = urllib.request.Request(self.control_url + action, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.loads(response.read())

    def commands(self) -> list[dict[str, Any]]:
        """Every pipeline the simulator received: its commands (name, is_script, parameter names)."""
        path = Path(self.command_log)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(instance: HypervInstance, what: str, build: Callable[[Any], None]) -> list[Any]:
    """Run one structured pipeline (``build`` adds its cmdlets to a pypsrp PowerShell) on the host, logged in
    with NTLM (over verified TLS, or with WinRM message encryption over HTTP); ``what`` names it in errors."""
    from pypsrp.exceptions import WinRMError
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan
    from requests.exceptions import RequestException

    host, port = instance.server.rsplit(":", 1)
    wsman = WSMan(host.strip("[]"), port=int(port), username=instance.user, password=instance.password,
                  ssl=instance.tls, auth="ntlm", cert_validation=instance.ca_file or True, connection_timeout=10,
                  read_timeout=30, operation_timeout=20)
    try:
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            build(ps)
            output: list[Any] = ps.invoke()
    except (WinRMError, RequestException, OSError) as exc:
        raise VirtplaneError(f"{what} on the Hyper-V simulator failed: {exc}") from None
    if ps.had_errors or ps.streams.error:
        messages = "; ".join(str(error) for error in ps.streams.error) or "the pipeline failed"
        raise VirtplaneError(f"{what} on the Hyper-V simulator failed: {messages}")
    return output


def create_switch(instance: HypervInstance, switch: str) -> None:
    """``New-VMSwitch -Name <switch> -SwitchType Internal`` on the host."""
    _run(instance, f"creating the VM switch '{switch}'",
         lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", switch).add_parameter("SwitchType", "Internal"))


def dismount_devices(instance: HypervInstance, location_paths: Sequence[str]) -> list[str]:
    """Disable and dismount each device of ``location_paths`` on the host unless it is dismounted already or
    assigned to a VM (``Get-VMHostAssignableDevice`` and ``Get-VM | Get-VMAssignableDevice`` list those), so
    calling it again is harmless. Returns the paths it dismounted."""
    listed = _run(instance, "listing the assignable devices", lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
    held = _run(instance, "listing the devices assigned to VMs",
                lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Get-VMAssignableDevice"))
    dismounted = {_prop(device, "LocationPath") for device in [*listed, *held]}
    located = _run(instance, "reading the devices' location paths",
                   lambda ps: ps.add_cmdlet("Get-PnpDevice").add_parameter("PresentOnly", True)
                   .add_cmdlet("Get-PnpDeviceProperty").add_parameter("KeyName", "DEVPKEY_Device_LocationPaths"))
    instance_of = {path: _prop(item, "InstanceId") for item in located for path in (_prop(item, "Data") or [])}
    done = []
    for path in location_paths:
        if path in dismounted:
            continue
        if path in instance_of:
            _run(instance, f"disabling the device '{path}'",
                 lambda ps, path=path: ps.add_cmdlet("Disable-PnpDevice").add_parameter("InstanceId",
                                                                                        instance_of[path])
                 .add_parameter("Confirm", False))
        _run(instance, f"dismounting the device '{path}'",  # an unknown path: the host's own error says why
             lambda ps, path=path: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath", path)
             .add_parameter("Force", True))
        done.append(path)
    return done


def _prop(obj: Any, name: str) -> Any:
    """A property of a deserialized object (None when it has none)."""
    for properties in (getattr(obj, "adapted_properties", {}), getattr(obj, "extended_properties", {})):
        for key, value in properties.items():
            if key.lower() == name.lower():
                return value
    return None


def start(work_dir: Path, *, host_name: str = "HV1", profile: str = "plain", tls: bool = False,
          name: str = "hyperv", switch: str = "", dismount: Sequence[str] = (),
          timeout: float = 60.0, address: str = "127.0.0.1") -> HypervInstance:
    """Start one simulated host in its own session (it outlives this process) and wait until it serves.

    ``profile``: a built-in host (``gpu``, ``sriov``, ``plain``) or a host description file (YAML or JSON,
    virtplane_lab.hypervsim.hostfile); ``tls`` serves HTTPS with a
    certificate signed by a CA written to ``ca.pem``; ``switch`` names an internal VM switch created at start
    (and exported as ``HYPERV_SWITCH``); ``dismount`` the location paths of devices dismounted from the host at
    start, so they can be assigned to VMs."""
    run_dir = work_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = process.new_password(run_dir)
    command_log = run_dir / "commands.jsonl"
    args = [sys.executable, "-m", "virtplane_lab.hypervsim", "--host", address, "--port", "0", "--host-name", host_name,
            "--profile", profile, "--user", USER, "--password-file", str(password_file), "--work-dir", str(run_dir),
            "--command-log", str(command_log), "--state-dump", str(run_dir / "state.json")]
    ca_file = ""
    if tls:
        ca_file = str(run_dir / "ca.pem")
        args += ["--cert-out", ca_file]
    pid, ready = process.launch(args, run_dir, "Hyper-V simulator", timeout)
    where = f"[{ready['host']}]" if ":" in ready["host"] else ready["host"]  # HYPERV_SERVER: [IPv6]:port
    instance = HypervInstance(server=f"{where}:{ready['port']}", host_name=host_name, pid=pid,
                              ca_file=ca_file, password_file=str(password_file), control_url=ready["control"],
                              command_log=str(command_log))
    try:
        if switch:
            create_switch(instance, switch)
            instance.switch = switch
        if dismount:
            dismount_devices(instance, dismount)
    except VirtplaneError:
        instance.stop()
        raise
    return instance
