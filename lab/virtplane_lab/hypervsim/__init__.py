"""hypervsim: a simulated Hyper-V host behind a real WinRM/PSRP endpoint, the lab's test peer.

Built on psrpcore's server side (runspace pool, pipelines) behind ``http.server``; unmodified pypsrp
(``WSMan``, ``RunspacePool``, ``PowerShell``) talks to it. Self-contained: imports nothing else from
virtplane. Run one host per process::

    python -m virtplane_lab.hypervsim --port 0 --password-file PW [--host-name HV1] [--profile gpu|sriov|plain|F.yaml]
        [--cert-out ca.pem] [--user virtplane] [--work-dir DIR] [--command-log F] [--state-dump F]

It prints one JSON line once it listens (``url``, ``host``, ``port``, ``tls``, ``control``).

Transport and login
- ``POST /wsman``, SOAP 1.2: transfer Create/Delete, shell Command/Send/Receive/Signal; a Receive carries
  at most about 96 KiB of PSRP data (under pypsrp's default MaxEnvelopeSize). Unknown ShellId:
  WSMan fault 2150858843; a Receive with nothing to say waits up to OperationTimeout, then fault
  2150858793 (pypsrp retries it).
- NTLM/Negotiate (pyspnego's acceptor, account in ``WORK_DIR/ntlm-users``; log in as ``user`` or
  ``HOST\\user``) with WinRM message encryption over HTTP; Basic (HTTPS, or HTTP with the client's
  ``encryption="never"``). A wrong password is HTTP 401 (pypsrp: AuthenticationError). With
  ``--cert-out`` it serves HTTPS with a certificate from a throwaway CA written to that file.

What it runs
- Only cmdlet commands: a pipeline carrying script text fails (terminating error "This host accepts only
  cmdlet commands…") before anything in it runs (this simulator's own rule). Otherwise statements run one by one
  as PowerShell runs a batch (engine.py): an unknown cmdlet ("The term 'X' is not recognized…", FQID
  CommandNotFoundException), an unknown parameter or a positional argument fails its own statement when reached;
  a statement's terminating error is recorded and the next statement runs; ``-ErrorAction Stop`` ends the batch.
  Common parameters: -ErrorAction (Stop; SilentlyContinue/Ignore drop errors), -WarningAction, -Verbose, -Debug.
  Every pipeline is logged to the command log (JSON lines: command names, is_script, parameter names; never
  values, never script text).
- Within a statement, each command after the first runs once per object piped to it, bound by type
  (VirtualMachine -> -VM, VMNetworkAdapter -> -VMNetworkAdapter, HardDiskDrive -> -VMHardDiskDrive, VM -> Get-VHD
  -VMId by property name …).
- Values arrive typed; an ``<I32>`` that overflows fails the pipeline (not the connection); integer
  parameters are range-checked by their .NET type (Int16/Int32/Int64/UInt16/UInt32/UInt64); enums by
  name; ``[Boolean]`` accepts Boolean or numbers. Errors carry real FQIDs, categories and targets (errors.py).
Outputs carry the real type names (``types[0]``) and exactly the properties the Hyper-V module documents for each
type (psobjects.py; tests/fixtures/hyperv_documented_types.yaml), nested objects as their text (serialization
depth 1), enums as psrpcore enums (``str()`` is the name); CIM instances (Win32_Processor, Win32_OperatingSystem,
Win32_PnPEntity) their documented properties.

Cmdlets and parameters (all named; ``-VM`` is filled from the pipeline)
- New-VM -Name(-VMName) -MemoryStartupBytes<Int64> -Generation<1|2> -NoVHD|-NewVHDPath -NewVHDSizeBytes<UInt64>
  |-VHDPath -SwitchName -Path -Version -BootDevice -Force. Adds one "Network Adapter"; Generation 1 by default;
  512 MB; memory in 2 MB steps, >= 32 MB; Version among the host's supported ones; Path = <Path>\\<Name>.
- Get-VM [-Id <Guid[]>] [-Name <wildcards>] [-ComputerName]; Set-VM -Notes -NewVMName -ProcessorCount
  -MemoryStartupBytes -StaticMemory -DynamicMemory -MemoryMinimumBytes -MemoryMaximumBytes
  -AutomaticStopAction -AutomaticStartAction -GuestControlledCacheTypes -LowMemoryMappedIoSpace<UInt32>
  -HighMemoryMappedIoSpace<UInt64> -Passthru (all but Notes/NewVMName need the VM off);
  Remove-VM -Force (leaves VHDs; without -Force: no interactive host); Start-VM; Stop-VM -Force -TurnOff -Save.
- Get-VMProcessor; Set-VMProcessor -Count -ExposeVirtualizationExtensions (VM off; nested needs version
  >= 8.0 on Intel, >= 9.3 on AMD); Get-VMMemory; Set-VMMemory -StartupBytes -DynamicMemoryEnabled
  -MinimumBytes -MaximumBytes (VM off).
- Get-VMFirmware, Set-VMFirmware -EnableSecureBoot On|Off -SecureBootTemplate (generation 2 only: a
  non-terminating error for generation 1).
- New-VHD -Path -SizeBytes<UInt64> -Dynamic|-Fixed; Get-VHD -Path | -VMId; Resize-VHD -Path -SizeBytes
  (grow only; -ToMinimumSize refused; online only for VHDX on SCSI; not on a checkpoint chain); Remove-Item
  -Path (wildcards) | -LiteralPath (VHD files only; refused while attached or a parent);
  Get/Add/Remove-VMHardDiskDrive -ControllerType IDE|SCSI -ControllerNumber -ControllerLocation -Path
  (Generation 1: 2x2 IDE, DVD at 1:0, SCSI once added; Generation 2: one SCSI, up to 4x64; IDE changes need the
  VM off).
- Get/Add/Remove/Connect/Disconnect/Set-VMNetworkAdapter (-Name -SwitchName -StaticMacAddress -IovWeight 0..100);
  Get/Set-VMNetworkAdapterVlan -Access -VlanId 1..4094 | -Untagged.
- Get-VMSwitch -Name -Id -SwitchType; New-VMSwitch -Name -SwitchType Internal|Private | -NetAdapterName
  -Notes -EnableIov (only at creation, only external, only on an SR-IOV NIC of a host with IOV support);
  Set-VMSwitch -Notes (no -EnableIov: a binding error); Remove-VMSwitch -Force (disconnects adapters).
- Get-VMHost (ComputerName, LogicalProcessorCount, MemoryCapacity, IovSupport, IovSupportReasons, …: no CPU vendor
  or free memory, as on a real host); Get-VMHostSupportedVersion [-Default]; Get-VMHostNumaNode (MemoryAvailable);
  Get-CimInstance -ClassName Win32_Processor | Win32_OperatingSystem; Get-Service -Name ClusSvc.
- Checkpoint-VM, Get-VMSnapshot (Get-VMCheckpoint), Remove-VMSnapshot (Remove-VMCheckpoint);
  Get/Add-VMScsiController.
- DDA: Get-PnpDevice [-Class] [-PresentOnly] | Get-PnpDeviceProperty -KeyName DEVPKEY_Device_LocationPaths;
  Disable-/Enable-PnpDevice -InstanceId -Confirm:$false; Get-VMHostAssignableDevice;
  Dismount-VMHostAssignableDevice -LocationPath [-Force] (needs host IOV support and the device disabled;
  -Force when the device has no mitigation driver); Mount-VMHostAssignableDevice;
  Get/Add/Remove-VMAssignableDevice -LocationPath|-InstancePath (VM off, static memory, AutomaticStopAction
  TurnOff; device dismounted and not assigned elsewhere; a VM holding one cannot be saved or use dynamic memory).
- GPU-P: Get-VMHostPartitionableGpu (ValidPartitionCounts, PartitionCount, Total/Available/Min/Max/
  Optimal x VRAM/Encode/Decode/Compute); Set-VMHostPartitionableGpu -Name -PartitionCount (one of the
  valid counts, none assigned); Get/Add/Remove-VMGpuPartitionAdapter (VM off, version >= 12.0, one per VM,
  partitions available, GPU not dismounted for DDA).
- Select-Object -Property <names or wildcards>.

Hosts: a host description file (hostfile.py: YAML or JSON), or a built-in one (hosts/gpu.yaml: Intel, Server
2025, IOV, an A2 and an H100 for DDA and a dismounted NVMe drive, a partitionable GPU; hosts/sriov.yaml: AMD, an
SR-IOV NIC "SLOT 3" with 8 VFs; hosts/plain.yaml: Intel, Server 2022, no IOV, versions up to 10.0).
Storage is laid out as New-VM does (model.py), checkpoints make differencing disks (snapshots.py), Remove-Item
-Path expands wildcards (cmdlets_storage.py), DDA wants the device disabled and MMIO for its BARs
(cmdlets_devices.py, cmdlets_vm.py). ``seed`` (control endpoint) adds VMs an administrator made in ways virtplane
never does (seeding.py: pass-through disks, missing files, VHDs on shares it cannot open, clustered VMs).

Faults and state: the control endpoint (same listener, loopback clients, no login), POST JSON to
``/hypervsim/<action>``: ``fault`` {"drop": "<cmdlet>", "times": 1} closes the TCP connection without a
reply when the pipeline reaches that cmdlet (the commands before it have run); {"slow": "<cmdlet>",
"seconds": s} sleeps before it; {"gather": "<cmdlet>", "count": n, "seconds": s} holds pipelines there until n
have arrived (``gathered`` in the answer of a later ``fault``: they ran at the same time); ``clear``; ``reboot``
(every runspace and connection is lost; VMs follow their stop/start actions); ``seed``; ``state`` (the host's state
as JSON, with its open shells and the most pipelines it ran at once; also written to --state-dump).

Error wording: texts Microsoft documents or hosts print are used where known (the "current state"
sentence, "not recognized", parameter binding, the DDA mitigation warning); the others are this
simulator's own sentences naming the rule, not verified against a real host.
"""
