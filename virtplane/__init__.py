"""virtplane: declarative virtual machines, networks and disks on vSphere, Proxmox VE and Hyper-V."""

from virtplane.resources import Disk, Endpoint, Network, Nic, VirtualMachine

__all__ = ["Disk", "Endpoint", "Network", "Nic", "VirtualMachine"]
__version__ = "0.1.0"
