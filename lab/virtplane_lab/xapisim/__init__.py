"""xapisim: a simulated XenServer / XCP-ng pool behind XAPI's XML-RPC interface, the lab's test peer for the
XenServer provider, driven by the unmodified ``xenapi`` client (``XenAPI.Session``).

No XAPI can run here (it needs a Xen dom0), so this simulator models what the XenAPI reference documents
(https://xapi-project.github.io/xen-api/, the datamodel in ocaml/idl and the checks in ocaml/xapi of
xapi-project/xen-api; each module cites its sources) and is never more lenient: the real envelopes, OpaqueRefs,
error codes and parameters, ints as strings on the wire, power-state and capacity rules. Where the reference gives
a code but not its free-text parameter, the text is the simulator's own. Run one pool per process::

    python -m virtplane_lab.xapisim --port 0 --password-file PW [--cert-out ca.pem] [--user root]

What it serves (see each module): session login/logout; the generated accessors of every class it knows
(schema.py: pool, host, host_metrics, SR, VDI, VBD, VIF, network, PIF, VLAN, network_sriov, PCI, PGPU, GPU_group,
VGPU_type, VGPU, VM, task, session) including ``get_all_records_where``; VM clone/copy/provision/start/start_on/
clean_shutdown/hard_shutdown/destroy and the halted-only setters (vm.py); VDI/VBD (storage.py); networks, VIFs,
VLANs and SR-IOV capacity (network.py); vGPUs and GPU capacity (gpu.py); ``Async.*`` as tasks (tasks.py). The
seeded pool is in seed.py. A pool member listens too and answers HOST_IS_SLAVE with the master's address.

Faults and state: POST JSON to ``/xapisim/<action>`` (loopback only): ``fault`` {"drop": "VM.clone", "when":
"before"|"after", "times": 1} closes the connection without an answer before or after the call runs; {"slow":
"VM.clean_shutdown", "seconds": s} delays a call (an Async call's task stays pending that long); ``clear``;
``reset`` (a freshly seeded pool); ``calls`` (method names received, in order); ``objects`` (counts per class).

Not modelled (and refused as unknown messages): event.from, PBDs and SR plugging, snapshots, migration, suspend,
consoles, VM import/export, RBAC roles other than the pool's one administrator, HA.
"""
