"""The vendor documents the rules follow, one constant each, so a rule's docstring, its SARIF help link and the
README catalogue name the same page. Titles are the documents' own; facts were checked against them."""

from virtplane.policies.model import Source

VSPHERE_PCI_DEVICES = Source(
    "VMware vSphere 7.0 Virtual Machine Administration: PCI devices (DirectPath I/O, Dynamic DirectPath I/O, "
    "NVIDIA GRID vGPU)",
    "https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/"
    "GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html")
VSPHERE_SRIOV = Source(
    "VMware vSphere Networking: SR-IOV Support",
    "https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/"
    "GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html")
VSPHERE_HW_VERSIONS = Source("VMware KB 1003746: Virtual machine hardware versions",
                             "https://kb.vmware.com/s/article/1003746")
VSPHERE_NESTED_WITH_PASSTHROUGH = Source(
    "Broadcom KB 437651: Unable to enable \"Expose hardware assisted virtualization to the guest OS\" on a VM "
    "with vGPU or PCI passthrough device",
    "https://knowledge.broadcom.com/external/article/437651")
VSPHERE_GRAPHICS_TYPE = Source(
    "vSphere API: HostGraphicsInfoGraphicsType (basic, shared, direct, sharedDirect)",
    "https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/"
    "HostGraphicsInfoGraphicsType_enum")
VSPHERE_LARGE_BAR = Source("VMware KB 2142307: VMware vSphere VMDirectPath I/O: Requirements for Platforms and "
                           "Devices", "https://kb.vmware.com/s/article/2142307")
DELL_LARGE_BAR = Source("Dell KB 000199172: PCI Passthrough \"Module 'DevicePowerOn' power on failed\" when using "
                        "GPUs with Virtual Machines on vSphere",
                        "https://www.dell.com/support/kbdoc/en-us/000199172/pci-passthrough-module-devicepoweron-"
                        "power-on-failed")
NVIDIA_VGPU_GUIDE = Source("NVIDIA Virtual GPU Software User Guide",
                           "https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html")
PVE_PASSTHROUGH = Source("Proxmox VE wiki: PCI(e) Passthrough", "https://pve.proxmox.com/wiki/PCI(e)_Passthrough")
PVE_QM = Source("Proxmox VE Administration Guide: QEMU/KVM Virtual Machines (PCI(e) passthrough, mediated devices)",
                "https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough")
PVE_NESTED = Source("Proxmox VE wiki: Nested Virtualization", "https://pve.proxmox.com/wiki/Nested_Virtualization")
PVE_REQUIREMENTS = Source("Proxmox VE Administration Guide: System Requirements",
                          "https://pve.proxmox.com/pve-docs/chapter-pve-installation.html#install_recommended_requirements")
ESXI_REQUIREMENTS = Source("VMware ESXi Installation and Setup: ESXi Hardware Requirements",
                           "https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.esxi.install.doc/"
                           "GUID-DEB8086A-306B-4239-BF76-E354679202FC.html")
HYPERV_REQUIREMENTS = Source("Microsoft Learn: System requirements for Hyper-V on Windows Server",
                             "https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/"
                             "host-hardware-requirements")
HYPERV_NESTED = Source("Microsoft Learn: Run Hyper-V in a Virtual Machine with Nested Virtualization",
                       "https://learn.microsoft.com/en-us/virtualization/hyper-v-on-windows/user-guide/"
                       "enable-nested-virtualization")
HYPERV_DDA = Source("Microsoft Learn: Plan for deploying devices by using Discrete Device Assignment",
                    "https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/"
                    "plan-for-deploying-devices-using-discrete-device-assignment")
HYPERV_GPU_P = Source("Microsoft Learn: GPU partitioning",
                      "https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/gpu-partitioning")
VSPHERE_CAPABILITY = Source(
    "vSphere API: HostCapability (ftCompatibilityIssues, smpFtCompatibilityIssues) and "
    "HostCapabilityFtUnsupportedReason (cpuHvUnsupported, cpuHwmmuUnsupported, cpuHvDisabled)",
    "https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/"
    "HostCapabilityFtUnsupportedReason_enum")
VSPHERE_PASSTHRU_INFO = Source(
    "vSphere API: HostPciPassthruInfo (passthruEnabled, passthruActive = enabled and rebooted, dependentDevice)",
    "https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostPciPassthruInfo")
VSPHERE_DYNAMIC_BACKING = Source(
    "vSphere API: VirtualPCIPassthroughDynamicBackingInfo (allowedDevice, assignedId)",
    "https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/"
    "VirtualPCIPassthroughDynamicBackingInfo")
VSPHERE_GRAPHICS_INFO = Source(
    "vSphere API: HostGraphicsInfo (graphicsType per device, vgpuMode, memorySizeInKB, vm)",
    "https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostGraphicsInfo")
VSPHERE_ADMISSION = Source(
    "VMware vSphere Resource Management: Admission Control (a VM powers on only if its reservation fits the "
    "unreserved resources)",
    "https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.resmgmt.doc/"
    "GUID-7FA1A7C1-F6D5-4AB6-B2F7-AC9574E43C97.html")
VMWARE_V100_PASSTHROUGH = Source(
    "VMware blog: How to Enable Nvidia V100 GPU in Passthrough mode on vSphere (pciPassthru.use64bitMMIO, "
    "pciPassthru.64bitMMIOSizeGB: the devices' memory mapping added up, rounded up to a power of two)",
    "https://blogs.vmware.com/apps/2018/10/how-to-enable-nvidia-v100-gpu-in-passthrough-mode-on-vsphere-for-"
    "machine-learning-and-other-hpc-workloads.html")
PVE_API_MACHINES = Source("Proxmox VE API: GET /nodes/{node}/capabilities/qemu/machines",
                          "https://pve.proxmox.com/pve-docs/api-viewer/#/nodes/{node}/capabilities/qemu/machines")
PVE_RESOURCE_MAPPING = Source(
    "Proxmox VE Administration Guide: Resource Mapping (only root@pam may pass a raw device; others need a "
    "mapping and Mapping.Use)", "https://pve.proxmox.com/pve-docs/chapter-qm.html#resource_mapping")
LIBVIRT_DOMAIN = Source("libvirt: Domain XML format (domain type kvm or qemu, host device assignment, SR-IOV "
                        "interfaces)", "https://libvirt.org/formatdomain.html")
LIBVIRT_DOMAIN_CAPS = Source("libvirt: Domain capabilities XML format (host-passthrough CPU, UEFI loaders, hostdev)",
                             "https://libvirt.org/formatdomaincaps.html")
LIBVIRT_NODEDEV = Source("libvirt: Node devices XML format (PCI, IOMMU groups, mdev types, SR-IOV functions)",
                         "https://libvirt.org/formatnode.html")
PVE_PCT = Source("Proxmox VE Administration Guide: Proxmox Container Toolkit (privileged and unprivileged containers, "
                 "container options)", "https://pve.proxmox.com/pve-docs/chapter-pct.html")
PVE_LXC_API = Source("Proxmox VE API viewer: /nodes/{node}/lxc (features: nesting, keyctl; devN)",
                     "https://pve.proxmox.com/pve-docs/api-viewer/index.html#/nodes/{node}/lxc")
