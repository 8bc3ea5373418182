"""Plan-time checks of a ContainerSpec against a Proxmox cluster, as (field, message) pairs: the template, clone
source, node and storages the cluster does not have, and settings PVE refuses (its ``password`` minimum, feature
flags only root@pam may set)."""

from __future__ import annotations

from virtplane.container_specs import ContainerSpec
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.config import NetworkNames
from virtplane.providers.proxmox.lxc_config import mount_slot_problem
from virtplane.providers.proxmox.templates import Templates
from virtplane.providers.proxmox.vm_check import checked_node, clone_source, nic_problems, tag_problems
from virtplane.providers.proxmox.vm_reader import VmRow

Problems = list[tuple[str, str]]
PASSWORD_MINIMUM = 5  # pve-container's create schema: password minLength 5
ROOT_ONLY_FEATURES = ("keyctl", "fuse")  # check_ct_modify_config_perm: "changing feature flags (except nesting) is
# only allowed for root@pam"
ROOTDIR = "rootdir"  # the storage content that holds container volumes


def container_problems(spec: ContainerSpec, names: NetworkNames, cluster: Cluster, templates: Templates,
                       rows: list[VmRow], default_node: str | None, root: bool) -> Problems:
    """``rows`` are the cluster's containers (clone sources); ``default_node`` the endpoint's ``node`` setting;
    ``root`` whether virtplane acts as root@pam itself (not a token)."""
    problems: Problems = []
    source = clone_source(spec.clone_from, spec.linked_clone, rows, problems, "container", "container template")
    if source is not None and not spec.linked_clone and source.running:
        problems.append(("clone_from", f"'{spec.clone_from}' (VMID {source.vmid}) is running, and Proxmox makes a full "
                                       "clone of a running container only from a snapshot: stop it, or clone a "
                                       "template"))
    node = checked_node(spec.node, source, default_node, cluster, problems)
    if spec.template is not None:
        node = _template_problems(spec.template, node, cluster, templates, problems)
    problems += _storage_problems(spec, cluster, node)
    for index, mount in enumerate(spec.mounts or []):
        if mount.slot is not None and (problem := mount_slot_problem(mount.slot)):
            problems.append((f"mounts[{index}].slot", problem))
    problems += nic_problems(spec.nics or [], names, cluster)
    problems += tag_problems(spec.tags or [])
    if spec.password is not None and len(spec.password.get_secret_value()) < PASSWORD_MINIMUM:
        problems.append(("password", f"Proxmox takes a root password of at least {PASSWORD_MINIMUM} characters"))
    if not root and spec.features is not None and spec.unprivileged is False:
        problems.append(("features", "only root@pam itself may set the feature flags of a privileged container on "
                                     "Proxmox (\"changing feature flags for privileged container is only allowed for "
                                     "root@pam\"): connect as root@pam, or leave features unset"))
    elif not root and spec.features is not None:
        for flag in ROOT_ONLY_FEATURES:
            if getattr(spec.features, flag) is not None:
                problems.append((f"features.{flag}", "only root@pam itself may set this feature flag on Proxmox "
                                                     "(\"changing feature flags (except nesting) is only allowed for "
                                                     "root@pam\"): connect as root@pam, or leave it unset"))
    if not root and spec.devices:
        problems.append(("devices", "only root@pam itself may pass devices into a container on Proxmox "
                                    "(\"configuring device passthrough is only allowed for root@pam\")"))
    return problems


def _template_problems(template: str, node: str | None, cluster: Cluster, templates: Templates,
                       problems: Problems) -> str | None:
    """Report a template the container's node (or, when it names none, every online node) lacks; returns the node to
    check storages on (one that has the template, when placement will choose)."""
    if node is not None:
        _, problem = templates.resolve(template, node)
        if problem:
            problems.append(("template", problem))
        return node
    online = cluster.online_nodes()
    if not online:
        problems.append(("node", "no node of the cluster is online"))
        return None
    having = templates.nodes_with(template, online)
    if having:
        return having[0]
    _, problem = templates.resolve(template, online[0])
    others = f" nor on any other online node ({', '.join(online[1:])})" if len(online) > 1 else ""
    problems.append(("template", f"{problem}{others}"))
    return None


def _storage_problems(spec: ContainerSpec, cluster: Cluster, node: str | None) -> Problems:
    if node is None:
        return []
    problems: Problems = []
    volumes = [("rootfs.storage", spec.rootfs.storage if spec.rootfs else None)]
    volumes += [(f"mounts[{i}].storage", mount.storage) for i, mount in enumerate(spec.mounts or [])]
    default_reported = False
    for where, storage in volumes:
        if storage:
            if problem := cluster.storage_problem(storage, node, ROOTDIR):
                problems.append((where, problem))
        elif not default_reported and (where != "rootfs.storage" or not spec.clone_from):
            problem, _ = cluster.default_storage_problem(node, ROOTDIR)
            if problem:
                problems.append((where, problem))
                default_reported = True
    return problems
