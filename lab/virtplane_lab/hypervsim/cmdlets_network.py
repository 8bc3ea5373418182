"""Network cmdlets: Get/Add/Remove/Connect/Set-VMNetworkAdapter, Get/Set-VMNetworkAdapterVlan and
Get/New/Remove/Set-VMSwitch (SR-IOV is chosen only when a switch is created)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from .engine import Invocation, cmdlet
from .errors import CURRENT_STATE, CmdletError, binding_error, invalid_state, not_found
from .model import NetworkAdapter, Switch
from .params import Param
from .psobjects import VlanView, switch_iov_reasons
from .targets import has_wildcard, target_vms, wildcard

ADAPTER_PIPELINE = {"Vm": "VM", "NetworkAdapter": "VMNetworkAdapter"}
ADAPTER_PARAMS = {"VM": Param("Object"), "VMName": Param("String[]"), "VMNetworkAdapter": Param("Object"),
                  "Name": Param("String", aliases=("VMNetworkAdapterName",)), "Passthru": Param("Switch")}


def _adapters(inv: Invocation) -> list[NetworkAdapter]:
    """The adapters a cmdlet acts on: the piped adapter, or the adapters of the VM(s), filtered by -Name."""
    if inv.has("VMNetworkAdapter"):
        return [inv.get("VMNetworkAdapter")]
    adapters = [a for vm in target_vms(inv) for a in vm.adapters]
    if inv.has("Name"):
        regex = wildcard(inv.get("Name"))
        adapters = [a for a in adapters if regex.match(a.name)]
        if not adapters and not has_wildcard(inv.get("Name")):
            inv.error(not_found(f"No network adapter is found with the given input: \"{inv.get('Name')}\".",
                                inv.get("Name")))
    return adapters


def _switch(inv: Invocation, name: str) -> Switch:
    switch = inv.host.switch(name)
    if switch is None:
        raise not_found(f"Hyper-V was unable to find a virtual switch with name \"{name}\".", name)
    return switch


@cmdlet("Get-VMNetworkAdapter", {"VM": Param("Object"), "VMName": Param("String[]"), "Name": Param("String")},
        pipeline={"Vm": "VM"})
def get_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    yield from _adapters(inv)


@cmdlet("Add-VMNetworkAdapter", {"VM": Param("Object"), "VMName": Param("String[]"), "Name": Param("String"),
                                 "SwitchName": Param("String"), "StaticMacAddress": Param("String"),
                                 "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def add_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        try:
            if vm.state != "Off" and vm.generation == 1:
                raise invalid_state(f"Failed to add device 'Synthetic Ethernet Port' to '{vm.name}': generation 1 "
                                    f"virtual machines take new network adapters only while off. {CURRENT_STATE}",
                                    vm.name)
            switch = _switch(inv, inv.get("SwitchName")) if inv.has("SwitchName") else None
        except CmdletError as error:
            inv.error(error)
            continue
        adapter = NetworkAdapter(vm.vm_id, inv.get("Name", "Network Adapter"), switch.name if switch else "",
                                 inv.get("StaticMacAddress") or inv.host.new_mac(),
                                 id=f"Microsoft:{str(vm.vm_id).upper()}\\{str(uuid.uuid4()).upper()}")
        vm.adapters.append(adapter)
        if inv.get("Passthru"):
            yield adapter


@cmdlet("Remove-VMNetworkAdapter", ADAPTER_PARAMS, pipeline=ADAPTER_PIPELINE)
def remove_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    for adapter in _adapters(inv):
        vm = inv.host.vm(adapter.vm_id)
        if vm is None or adapter not in vm.adapters:
            continue
        if vm.state != "Off" and vm.generation == 1:
            inv.error(invalid_state(f"Failed to remove device 'Synthetic Ethernet Port' from '{vm.name}'. "
                                    f"{CURRENT_STATE}", vm.name))
            continue
        vm.adapters.remove(adapter)
        if inv.get("Passthru"):
            yield adapter


@cmdlet("Connect-VMNetworkAdapter", {**ADAPTER_PARAMS, "SwitchName": Param("String")}, pipeline=ADAPTER_PIPELINE)
def connect_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    if not inv.has("SwitchName"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                            "SwitchName.", "MissingMandatoryParameter")
    switch = _switch(inv, inv.get("SwitchName"))
    for adapter in _adapters(inv):
        adapter.switch_name = switch.name
        if inv.get("Passthru"):
            yield adapter


@cmdlet("Disconnect-VMNetworkAdapter", ADAPTER_PARAMS, pipeline=ADAPTER_PIPELINE)
def disconnect_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    for adapter in _adapters(inv):
        adapter.switch_name = ""
        if inv.get("Passthru"):
            yield adapter


@cmdlet("Set-VMNetworkAdapter", {**ADAPTER_PARAMS, "IovWeight": Param("UInt32", range=(0, 100)),
                                 "MacAddressSpoofing": Param("Enum", choices=("On", "Off"),
                                                             extra={"enum": "Microsoft.HyperV.PowerShell.OnOffState"})},
        pipeline=ADAPTER_PIPELINE)
def set_vm_network_adapter(inv: Invocation) -> Iterator[Any]:
    for adapter in _adapters(inv):
        if inv.has("IovWeight"):
            adapter.iov_weight = inv.get("IovWeight")
        if inv.has("MacAddressSpoofing"):
            adapter.mac_address_spoofing = inv.get("MacAddressSpoofing")
        if inv.get("Passthru"):
            yield adapter


@cmdlet("Get-VMNetworkAdapterVlan", {"VM": Param("Object"), "VMName": Param("String[]"),
                                     "VMNetworkAdapter": Param("Object"), "VMNetworkAdapterName": Param("String")},
        pipeline=ADAPTER_PIPELINE)
def get_vm_network_adapter_vlan(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMNetworkAdapterName"):
        inv.args["Name"] = inv.get("VMNetworkAdapterName")
    for adapter in _adapters(inv):
        vm = inv.host.vm(adapter.vm_id)
        if vm is not None:
            yield VlanView(adapter, vm)


@cmdlet("Set-VMNetworkAdapterVlan", {"VM": Param("Object"), "VMName": Param("String[]"),
                                     "VMNetworkAdapter": Param("Object"), "VMNetworkAdapterName": Param("String"),
                                     "Access": Param("Switch"), "Untagged": Param("Switch"),
                                     "VlanId": Param("Int32", aliases=("AccessVlanId",), range=(1, 4094)),
                                     "Passthru": Param("Switch")}, pipeline=ADAPTER_PIPELINE)
def set_vm_network_adapter_vlan(inv: Invocation) -> Iterator[Any]:
    if bool(inv.get("Access")) == bool(inv.get("Untagged")):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters: give exactly one "
                            "of -Access and -Untagged.", "AmbiguousParameterSet")
    if inv.get("Access") and not inv.has("VlanId"):
        raise CmdletError("The VlanId parameter must be specified in Access mode.", category="InvalidArgument",
                          error_id="InvalidParameter", terminating=True)
    if inv.has("VMNetworkAdapterName"):
        inv.args["Name"] = inv.get("VMNetworkAdapterName")
    for adapter in _adapters(inv):
        if inv.get("Access"):
            adapter.vlan_mode, adapter.access_vlan_id = "Access", inv.get("VlanId")
        else:
            adapter.vlan_mode, adapter.access_vlan_id = "Untagged", 0
        vm = inv.host.vm(adapter.vm_id)
        if inv.get("Passthru") and vm is not None:
            yield VlanView(adapter, vm)


@cmdlet("Get-VMSwitch", {"Name": Param("String[]", aliases=("SwitchName",)), "Id": Param("Guid"),
                         "SwitchType": Param("Enum", choices=("External", "Internal", "Private"))})
def get_vm_switch(inv: Invocation) -> Iterator[Any]:
    switches = list(inv.host.switches)
    if inv.has("Id"):
        switches = [s for s in switches if s.id == inv.get("Id")]
        if not switches:
            inv.error(not_found(f"Hyper-V was unable to find a virtual switch with id \"{inv.get('Id')}\".",
                                inv.get("Id")))
    if inv.has("SwitchType"):
        switches = [s for s in switches if s.switch_type == inv.get("SwitchType")]
    if inv.has("Name"):
        chosen: list[Switch] = []
        for name in inv.get("Name"):
            matched = [s for s in switches if wildcard(name).match(s.name)]
            if not matched and not has_wildcard(name):
                inv.error(not_found(f"Hyper-V was unable to find a virtual switch with name \"{name}\".", name))
            chosen.extend(s for s in matched if s not in chosen)
        switches = chosen
    yield from switches


@cmdlet("New-VMSwitch", {"Name": Param("String", aliases=("SwitchName",)),
                         "SwitchType": Param("Enum", choices=("Internal", "Private"), extra={"enum": "VMSwitchType"}),
                         "NetAdapterName": Param("String"), "Notes": Param("String"), "EnableIov": Param("Boolean"),
                         "AllowManagementOS": Param("Boolean")})
def new_vm_switch(inv: Invocation) -> Iterator[Any]:
    if not inv.has("Name"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: Name.",
                            "MissingMandatoryParameter")
    if inv.has("SwitchType") == inv.has("NetAdapterName"):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters: give either "
                            "-SwitchType (Internal, Private) or -NetAdapterName (External).", "AmbiguousParameterSet")
    name = inv.get("Name")
    nic_name = inv.get("NetAdapterName")
    if nic_name is not None:
        nic = next((n for n in inv.host.hardware.nics if n.name.lower() == nic_name.lower()), None)
        if nic is None:
            raise not_found(f"No MSFT_NetAdapter objects found with property 'Name' equal to '{nic_name}'. Verify the "
                            "value of the property and retry.", nic_name)
        if any(s.net_adapter_name.lower() == nic_name.lower() for s in inv.host.switches):
            raise CmdletError(f"Failed while adding virtual Ethernet switch connections. The network adapter "
                              f"'{nic_name}' is already bound to another virtual switch.", category="ResourceBusy",
                              error_id="InvalidOperation", target=nic_name)
        nic_name = nic.name
    if inv.get("EnableIov"):
        reasons = switch_iov_reasons(inv.host, nic_name)
        if reasons:
            raise CmdletError(f"Failed while creating virtual Ethernet switch '{name}' with SR-IOV enabled: "
                              f"{' '.join(reasons)}", category="InvalidOperation", error_id="InvalidParameter",
                              target=name)
    switch = Switch(uuid.uuid4(), name, "External" if nic_name else inv.get("SwitchType"), inv.get("Notes", ""),
                    bool(inv.get("EnableIov")), nic_name or "")
    inv.host.switches.append(switch)
    yield switch


def _switches(inv: Invocation) -> list[Switch]:
    if inv.has("VMSwitch"):
        return [inv.get("VMSwitch")]
    if not inv.has("Name"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: Name.",
                            "MissingMandatoryParameter")
    found: list[Switch] = []
    for name in inv.get("Name"):
        matched = [s for s in inv.host.switches if wildcard(name).match(s.name)]
        if not matched and not has_wildcard(name):
            inv.error(not_found(f"Hyper-V was unable to find a virtual switch with name \"{name}\".", name))
        found.extend(s for s in matched if s not in found)
    return found


@cmdlet("Remove-VMSwitch", {"Name": Param("String[]", aliases=("SwitchName",)), "VMSwitch": Param("Object"),
                            "Force": Param("Switch")}, pipeline={"Switch": "VMSwitch"})
def remove_vm_switch(inv: Invocation) -> Iterator[Any]:
    if not inv.get("Force"):
        from .cmdlets_vm import NO_UI

        raise CmdletError(NO_UI, error_id="HostException", reason="HostException", terminating=True)
    for switch in _switches(inv):
        for vm in inv.host.vms:
            for adapter in vm.adapters:
                if adapter.switch_name == switch.name:
                    adapter.switch_name = ""
        inv.host.switches.remove(switch)
    return
    yield


@cmdlet("Set-VMSwitch", {"Name": Param("String[]", aliases=("SwitchName",)), "VMSwitch": Param("Object"),
                         "Notes": Param("String"), "AllowManagementOS": Param("Boolean"), "Passthru": Param("Switch")},
        pipeline={"Switch": "VMSwitch"})
def set_vm_switch(inv: Invocation) -> Iterator[Any]:
    for switch in _switches(inv):
        if inv.has("Notes"):
            switch.notes = inv.get("Notes")
        if inv.get("Passthru"):
            yield switch
