"""The resources a stack author writes: ``Endpoint``, ``Network``, ``VirtualMachine``, ``Disk``, ``Nic``, ``Gpu``,
``CloudInit``.

Under ``pulumi up`` they are ordinary Pulumi resources of package ``virtplane``. Under virtplane's own
CLI a collector is active and they are recorded directly (a mock registration costs ~2 ms each, far
too much for stacks of thousands of VMs), while ``pulumi.Config`` and ``pulumi.export`` keep working
through Pulumi's mock runtime.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from virtplane import declared
from virtplane.errors import SpecError
from virtplane.kinds import build_spec, secret_fields
from virtplane.wire_names import from_wire, from_wire_map, to_wire

PACKAGE = "virtplane"


def _unknown(unknown: dict[str, Any], known: list[str]) -> list[tuple[str, str]]:
    """A problem per argument not in ``known``, with the closest known name when there is one."""
    import difflib

    problems = []
    for field in unknown:
        close = difflib.get_close_matches(field, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known fields: {', '.join(known)}"
        problems.append((field, f"unknown field{hint}"))
    return problems


def _refuse(kind: str, name: str, problems: list[tuple[str, str]]) -> None:
    """Under virtplane's CLI, note the problems and let the program go on, so every error of the stack is reported
    in one run; under Pulumi, raise them now (the engine reports the resource)."""
    if not problems:
        return
    error = SpecError(kind, name, problems)
    collector = declared.active_collector()
    if collector is None:
        raise error
    collector.refuse(error)


def _plain(kind: str, name: str, field: str, value: Any) -> Any:
    """Resolve a value for collection; Pulumi outputs of other resources cannot be known here."""
    if isinstance(value, pulumi.Output):
        from pulumi.runtime.sync_await import _sync_await

        resolved = _sync_await(value.future())
        if resolved is None:
            raise SpecError(kind, name, [(field, "is a value not known until deployment (a pulumi.Output); "
                                          "virtplane's own CLI needs plain values, or use `pulumi up`")])
        return resolved
    return value


def _stand_in_outputs(resource: pulumi.Resource, name: str, type_: str) -> None:
    """Known ``id``/``urn`` outputs for a collected (unregistered) resource, so exports keep working."""
    resource._name = name  # type: ignore[attr-defined]
    resource.__dict__["id"] = pulumi.Output.from_input(name)
    resource.__dict__["urn"] = pulumi.Output.from_input(f"urn:pulumi:collected::{type_}::{name}")


def _has_output(value: Any) -> bool:
    if isinstance(value, pulumi.Output):
        return True
    if isinstance(value, dict):
        return any(_has_output(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_output(v) for v in value)
    return False


class Endpoint(pulumi.ProviderResource):
    """A hypervisor endpoint (vCenter/ESXi for ``kind="vsphere"``).

    Settings for ``vsphere``: ``server`` (``host`` or ``host:port``), ``username``, ``password``,
    ``datacenter``, ``cluster``, ``datastore``, ``ca_file``, ``insecure``. Each falls back to an
    environment variable: ``VSPHERE_SERVER``, ``VSPHERE_USER``, ``VSPHERE_PASSWORD``,
    ``VSPHERE_DATACENTER``, ``VSPHERE_CLUSTER``, ``VSPHERE_DATASTORE``, ``VSPHERE_CA_FILE``,
    ``VSPHERE_ALLOW_UNVERIFIED_SSL``. TLS is verified unless ``insecure=True`` is set explicitly.

    Settings for ``proxmox``: ``endpoint``, ``api_token`` (or ``username`` and ``password``), ``ca_file``,
    ``insecure``, ``node``, ``storage``, ``bridge`` (each falls back to its ``PROXMOX_VE_*`` variable), and
    ``task_timeout``, ``request_timeout``. Arguments win over environment variables. Under Pulumi,
    ``password`` and ``api_token`` are secret outputs.

    ``allow_data_loss=True`` lets ``pulumi up`` make changes that destroy data on this endpoint (the provider's
    ``allowDataLoss``); virtplane's own CLI ignores it and asks for ``--allow-data-loss`` on each run.
    """

    def __init__(self, resource_name: str, kind: str = "vsphere",
                 opts: pulumi.ResourceOptions | None = None, *, allow_data_loss: bool | None = None,
                 **settings: Any) -> None:
        from virtplane.providers.registry import provider_class

        self.resource_name = resource_name
        self.kind = kind
        self.endpoint_kind = kind  # under Pulumi ``kind`` becomes the registered resource's output; this stays a string
        try:
            cls = provider_class(kind, resource_name)
        except SpecError as error:
            _refuse("Endpoint", resource_name, error.problems)
            known: list[str] = list(settings)
        else:
            # The arguments a kind takes: its own list when they differ from its settings model's fields (Proxmox
            # takes endpoint= and api_token=, which it parses into host/port and token id/secret).
            known = list(getattr(cls, "setting_names", None) or cls.settings_model.model_fields)
            _refuse("Endpoint", resource_name, _unknown({k: v for k, v in settings.items() if k not in known}, known))
        collector = declared.active_collector()
        if collector is not None:
            collector.declare("Endpoint", resource_name)
            inputs = {k: _plain("Endpoint", resource_name, k, v) for k, v in settings.items()
                      if v is not None and k in known}
            if resource_name in collector.endpoints:
                _refuse("Endpoint", resource_name, [("name", "is declared twice")])
            else:
                collector.endpoints[resource_name] = declared.DeclaredEndpoint(resource_name, kind, inputs)
            _stand_in_outputs(self, resource_name, f"pulumi:providers:{PACKAGE}")
            return
        props = dict(settings, kind=kind)
        if allow_data_loss is not None:
            props["allowDataLoss"] = allow_data_loss
        for secret in ("password", "api_token"):  # secrets wherever they pass
            if props.get(secret) is not None:
                props[secret] = pulumi.Output.secret(props[secret])
        super().__init__(PACKAGE, resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        """``ca_file`` is ``caFile`` to Pulumi (virtplane/wire_names.py), as in Pulumi's own Python SDKs."""
        return to_wire(prop)

    def translate_output_property(self, prop: str) -> str:
        return from_wire(prop)


class Disk:
    """A virtual disk. ``size`` is an integer number of GiB or a string like ``"40GiB"`` or ``"1TiB"``.
    ``storage`` (a vSphere datastore or a Proxmox storage; ``datastore=`` is accepted as its other name)
    defaults to the endpoint's. ``thin`` provisioning (True when a disk is made and it is unset). ``bus`` is
    ``"paravirtual"`` (PVSCSI on vSphere, VirtIO SCSI on Proxmox; used when a disk is made and it is unset),
    ``"lsilogic"``, ``"sata"``, ``"ide"``, ``"nvme"`` (vSphere only) or ``"virtio-blk"`` (Proxmox only).
    ``slot`` names the disk's place (vSphere ``"scsi0:1"``, Proxmox ``"scsi1"``); unset, it is derived."""

    def __init__(self, size: int | str, storage: str | None = None, thin: bool | None = None,
                 bus: str | None = None, *, datastore: str | None = None, slot: str | None = None) -> None:
        self.args = {"size": size, "storage": storage if storage is not None else datastore, "thin": thin,
                     "bus": bus, "slot": slot}


class Nic:
    """A network adapter on ``network`` (a ``virtplane.Network`` or the name of an existing network).
    ``adapter`` is ``"paravirtual"`` (vmxnet3 / virtio; used when a NIC is made and it is unset),
    ``"e1000"``, ``"e1000e"`` or ``"sriov"`` (a virtual function; ``device`` may name the physical function).
    ``slot`` names the NIC's place (vSphere ``"ethernet0"``, Proxmox ``"net0"``); unset, it is derived."""

    def __init__(self, network: Network | str, adapter: str | None = None, *, device: str | None = None,
                 slot: str | None = None) -> None:
        self.network = network
        self.args = {"network": network.resource_name if isinstance(network, Network) else network,
                     "adapter": adapter, "device": device, "slot": slot}


class Gpu:
    """A GPU for a VM. ``mode="passthrough"``: a whole device (``device`` a PCI address such as
    ``"0000:3b:00.0"`` or a Proxmox resource mapping; unset, any capable GPU, filtered by ``vendor``).
    ``mode="vgpu"``: a slice by ``profile`` (vSphere ``"grid_a100-20c"``, Proxmox mdev ``"nvidia-471"``)."""

    def __init__(self, mode: str, *, profile: str | None = None, device: str | None = None,
                 vendor: str | None = None) -> None:
        self.args = {"mode": mode, "profile": profile, "device": device, "vendor": vendor}


class CloudInit:
    """Cloud-init for a VM's guest, from Jinja2 templates: ``user_data`` (required), ``meta_data`` and
    ``network_config`` are template files (a relative path is taken from the stack's directory), rendered in a
    sandbox with ``vars`` and ``vm_name``; a variable a template uses but ``vars`` lacks is an error naming the
    template, its line and the variable. Values may be secrets (``pulumi.Output.secret``, ``config.require_secret``):
    they are rendered in, and plans, logs and errors show only the documents' digest. Delivered the hypervisor's
    own way (docs/cloud-init.md): vSphere ``guestinfo`` keys, a Proxmox cloud-init drive, a Hyper-V NoCloud ISO."""

    def __init__(self, user_data: str | os.PathLike[str], meta_data: str | os.PathLike[str] | None = None,
                 network_config: str | os.PathLike[str] | None = None, vars: Mapping[str, Any] | None = None) -> None:
        self.user_data = os.fspath(user_data)
        self.meta_data = None if meta_data is None else os.fspath(meta_data)
        self.network_config = None if network_config is None else os.fspath(network_config)
        self.vars = dict(vars or {})


def _cloud_init_input(name: str, value: Any, problems: list[tuple[str, str]]) -> Any:
    """The ``cloud_init`` input of VM ``name``: the rendered documents (a pulumi.Output of them under ``pulumi up`` when
    a variable is one), None when unset; a problem is added (and None returned) when it cannot be rendered."""
    from virtplane.templating import TemplateProblem, Templates, render

    if value is None:
        return None
    if not isinstance(value, CloudInit):
        problems.append(("cloud_init", f"expected virtplane.CloudInit(user_data=...), got {type(value).__name__}"))
        return None
    collector = declared.active_collector()
    root = Path(collector.root) if collector is not None and collector.root else Path.cwd()
    templates = Templates(value.user_data, value.meta_data, value.network_config, root)
    if collector is None and _has_output(value.vars):  # under Pulumi, known once its variables are
        return pulumi.Output.from_input(value.vars).apply(lambda values: _rendered_or_raise(name, templates, values))
    values = _revealed(name, value.vars) if collector is not None else value.vars
    try:
        return render(templates, values, name)
    except TemplateProblem as problem:
        problems.append((problem.field, problem.message))
        return None


def _rendered_or_raise(name: str, templates: Any, values: Mapping[str, Any]) -> dict[str, str | None]:
    from virtplane.templating import TemplateProblem, render

    try:
        return render(templates, values, name)
    except TemplateProblem as problem:
        raise SpecError("VirtualMachine", name, [(problem.field, problem.message)]) from None


def _revealed(name: str, value: Any) -> Any:
    """``value`` with its pulumi.Outputs resolved (virtplane's CLI), each secret among them registered so it is masked
    in everything virtplane prints."""
    from virtplane import redact

    if isinstance(value, pulumi.Output):
        from pulumi.runtime.sync_await import _sync_await

        plain = _plain("VirtualMachine", name, "cloud_init.vars", value)
        if _sync_await(value.is_secret()):
            _register_secret(redact, plain)
        return _revealed(name, plain)
    if isinstance(value, Mapping):
        return {key: _revealed(name, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(name, item) for item in value]
    return value


def _register_secret(redact: Any, value: Any) -> None:
    if isinstance(value, Mapping):
        for item in value.values():
            _register_secret(redact, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _register_secret(redact, item)
    elif value is not None:
        redact.register(str(value))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _declaration_site(root: str | None) -> tuple[str, int] | None:
    """The file and line that declared the resource: the first caller inside the stack directory ``root``, else the
    first outside virtplane itself (a component in another package is reported where the stack used it)."""
    frame = sys._getframe(2)
    outside = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if root is not None and filename.startswith(root + os.sep):
            return filename, frame.f_lineno
        if outside is None and not filename.startswith(("<", _PACKAGE_DIR + os.sep)) \
                and f"{os.sep}pulumi{os.sep}" not in filename:
            outside = (filename, frame.f_lineno)
        frame = frame.f_back
    return outside


class _Managed(pulumi.CustomResource):
    """Shared construction: validate the spec, then register (Pulumi) or record (virtplane CLI). Property names are
    snake_case here and camelCase to Pulumi (``secure_boot`` is ``secureBoot``), as Pulumi's own Python SDKs do."""

    kind: str
    _referenced: tuple[Any, ...] = ()  # resources this one names by value (a NIC's Network)

    def translate_input_property(self, prop: str) -> str:
        return to_wire(prop)

    def translate_output_property(self, prop: str) -> str:
        return from_wire(prop)

    def _declare(self, name: str, inputs: dict[str, Any], deps: set[str],
                 opts: pulumi.ResourceOptions | None, problems: list[tuple[str, str]] | None = None) -> None:
        """``problems``: what the constructor found already (unknown arguments, a value where a list belongs);
        reported together with what the spec finds."""
        self.resource_name = name
        problems = list(problems or [])
        inputs = _enum_values(inputs)
        collector = declared.active_collector()
        if collector is None:
            if problems:
                raise SpecError(self.kind, name, problems)
            if not _has_output(inputs):  # known values are validated now; others by the plugin's Check
                build_spec(self.kind, name, inputs)
            inputs = {k: pulumi.Output.secret(v) if k in secret_fields(self.kind) and v is not None else v
                      for k, v in inputs.items()}  # secrets wherever they pass
            networks = [n for n in self._referenced if isinstance(n, Network)]
            if networks:  # created before the VMs whose NICs name them
                opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=networks))
            super().__init__(f"{PACKAGE}:index:{self.kind}", name, inputs, opts)
            return
        collector.declare(self.kind, name)
        _stand_in_outputs(self, name, f"{PACKAGE}:index:{self.kind}")
        plain: dict[str, Any] = {}
        for key, value in inputs.items():
            try:
                plain[key] = _plain(self.kind, name, key, value)
            except SpecError as error:
                problems += error.problems
        try:
            spec = build_spec(self.kind, name, plain)
        except SpecError as error:
            problems += error.problems
        if problems:
            _refuse(self.kind, name, problems)
            return
        endpoint = opts.provider if opts is not None else None
        if opts is not None and getattr(opts, "import_", None):
            collector.imports[(self.kind, name)] = str(opts.import_)
        for dependency in (opts.depends_on if opts is not None and isinstance(opts.depends_on, list) else []):
            if isinstance(dependency, _Managed):
                deps.add(f"{dependency.kind}/{dependency.resource_name}")
        collector.resources.append((self.kind, name, spec, endpoint, deps, _declaration_site(collector.root)))


class Network(_Managed):
    """A VM network with an optional 802.1Q ``vlan`` (0, the default, means untagged).

    On vSphere: a distributed port group on the endpoint's distributed switch, or a standard port
    group on every host of the cluster where there is no distributed switch."""

    kind = "Network"

    def __init__(self, resource_name: str, vlan: int = 0,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        self._declare(resource_name, {"vlan": vlan}, set(), opts, _unknown(unknown, ["vlan", "opts"]))


class VirtualMachine(_Managed):
    """A virtual machine.

    ``cpus``: virtual CPUs in all, spread over ``sockets`` (must divide ``cpus``; None keeps the
    hypervisor's layout).
    ``memory``: an integer number of MiB or a string like ``"4GiB"``. ``disks``: ``Disk`` objects
    (sizes in GiB or strings). ``nics``: ``Nic`` objects. ``node``: the host to run on (a Proxmox node
    or an ESXi host); None lets the driver choose. ``machine``: the virtual hardware platform (Proxmox
    machine type such as ``"q35"``, vSphere hardware version such as ``"vmx-19"``); None keeps the
    hypervisor's default. ``firmware``: ``"bios"`` or ``"uefi"``; ``secure_boot`` needs ``"uefi"``.
    ``guest_os``: ``"linux"``, ``"windows"``, ``"other"`` or the hypervisor's own guest id. ``power``:
    ``"on"`` or ``"off"``. ``nested_virtualization``: expose hardware virtualization to the guest.
    ``clone_from``: the name of a template or VM to clone when creating; ``linked_clone`` shares its
    disks instead of copying them. ``tags``: a list of strings. ``cloud_init``: a ``CloudInit`` (templates and
    their variables) for the guest's first boot.
    """

    kind = "VirtualMachine"

    def __init__(self, resource_name: str, cpus: int | None = None, memory: int | str | None = None,
                 disks: list[Disk] | None = None, nics: list[Nic] | None = None,
                 firmware: str | None = None, secure_boot: bool | None = None, guest_os: str | None = None,
                 power: str | None = None, nested_virtualization: bool | None = None,
                 clone_from: str | None = None, tags: list[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None, *,
                 sockets: int | None = None, node: str | None = None, machine: str | None = None,
                 linked_clone: bool = False, gpus: list[Gpu] | None = None, cloud_init: CloudInit | None = None,
                 **unknown: Any) -> None:
        problems = _unknown(unknown, ["cpus", "sockets", "memory", "disks", "nics", "gpus", "node", "machine",
                                      "firmware", "secure_boot", "guest_os", "power", "nested_virtualization",
                                      "clone_from", "linked_clone", "tags", "cloud_init", "opts"])
        items = {field: _items(field, values, expected, problems)
                 for field, values, expected in (("disks", disks, Disk), ("nics", nics, Nic), ("gpus", gpus, Gpu))}
        nics_given = [nic for nic in nics if isinstance(nic, Nic)] if isinstance(nics, list | tuple) else []
        deps = {f"Network/{nic.network.resource_name}" for nic in nics_given if isinstance(nic.network, Network)}
        self._referenced = tuple(nic.network for nic in nics_given)
        inputs = {
            "cpus": cpus, "sockets": sockets, "memory": memory, **items, "node": node, "machine": machine,
            "firmware": firmware, "secure_boot": secure_boot, "guest_os": guest_os, "power": power,
            "nested_virtualization": nested_virtualization, "clone_from": clone_from,
            "linked_clone": linked_clone, "tags": list(tags) if isinstance(tags, list | tuple) else tags,
            "cloud_init": _cloud_init_input(resource_name, cloud_init, problems),
        }
        self._declare(resource_name, inputs, deps, opts, problems)


def _items(field: str, values: Any, expected: type, problems: list[tuple[str, str]]) -> list[Any] | None:
    """The arguments of each ``expected`` item; None stays None (the list is not managed), [] is "none of them".
    What is not a list of such items is added to ``problems`` (and left out)."""
    if values is None:
        return None
    noun = f"virtplane.{expected.__name__}(...)"
    if not isinstance(values, list | tuple):
        got = f"one {noun}" if isinstance(values, expected) else f"{type(values).__name__} {values!r}"
        problems.append((field, f"expected a list of {noun} items, got {got}; write {field}=[{noun}]"))
        return None
    found = []
    for index, value in enumerate(values):
        if isinstance(value, expected):
            found.append(value.args)
        elif isinstance(value, dict):  # as Pulumi's generated code writes items: snake_case or camelCase keys
            found.append(from_wire_map(value))
        else:
            problems.append((f"{field}[{index}]", f"expected {noun}, got {type(value).__name__} {value!r}"))
    return found


def _enum_values(value: Any) -> Any:
    """Enum members (``virtplane.VirtualMachineFirmware.UEFI``, as code generated from the schema writes them) as
    their values."""
    import enum

    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _enum_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_enum_values(item) for item in value]
    return value


# The names Pulumi's code generation gives the nested input types (``pulumi import`` writes virtplane.DiskArgs(...)).
DiskArgs = Disk
NicArgs = Nic
GpuArgs = Gpu
