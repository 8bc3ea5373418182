"""The simulated Hyper-V host as a WinRM/PSRP peer, through unmodified pypsrp: authentication, message
encryption, structured cmdlets only, batching, and faults."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import unique, wsman
from tests.support.hyperv import prop
from virtplane_lab import hyperv


def invoke(instance: hyperv.HypervInstance, build, **overrides) -> PowerShell:
    with RunspacePool(wsman(instance, **overrides)) as pool:
        ps = PowerShell(pool)
        build(ps)
        ps.invoke()
        return ps


def test_ntlm_with_message_encryption_over_http_runs_a_cmdlet(hyperv_gpu):
    """about_Remote_Requirements / Get-VMHost: the default pypsrp path (NTLM, WinRM message encryption)."""
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VMHost"))
    assert ps.state == PSInvocationState.COMPLETED
    assert prop(ps.output[0], "ComputerName") == "HV-GPU"
    assert ps.output[0].types[0] == "Microsoft.HyperV.PowerShell.VMHost"


def test_negotiate_falls_back_to_ntlm_and_works(hyperv_gpu):
    """about_Remote_Requirements: Negotiate without Kerberos uses NTLM, still with message encryption."""
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VMHost"), auth="negotiate")
    assert ps.state == PSInvocationState.COMPLETED


@pytest.mark.parametrize("auth", ["ntlm", "basic"])
def test_a_wrong_password_is_an_authentication_error_naming_the_user_only(hyperv_gpu, auth):
    """about_Remote_Troubleshooting: a refused logon is HTTP 401, which pypsrp raises as AuthenticationError."""
    overrides = {"password": "not-the-password", "auth": auth}
    if auth == "basic":
        overrides["encryption"] = "never"
    with pytest.raises(AuthenticationError) as raised:
        RunspacePool(wsman(hyperv_gpu, **overrides)).open()
    assert "virtplane" in str(raised.value)
    assert "not-the-password" not in str(raised.value)


def test_basic_over_http_is_refused_by_pypsrp_unless_encryption_is_never(hyperv_gpu):
    """about_Remote_Requirements (AllowUnencrypted): Basic over HTTP sends the password in clear text."""
    with pytest.raises(ValueError, match="encryption"):
        wsman(hyperv_gpu, auth="basic")
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VMHost"), auth="basic", encryption="never")
    assert ps.state == PSInvocationState.COMPLETED


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_https_with_the_lab_ca_file_verifies_the_certificate(hyperv_sriov, auth):
    """about_Remote_Requirements (HTTPS listener): TLS with certificate verification against the lab's CA."""
    ps = invoke(hyperv_sriov, lambda ps: ps.add_cmdlet("Get-VMHost"), auth=auth)
    assert prop(ps.output[0], "ComputerName") == "HV-SRIOV"
    with pytest.raises(requests.exceptions.SSLError):
        invoke(hyperv_sriov, lambda ps: ps.add_cmdlet("Get-VMHost"), auth=auth, cert_validation=True)


def test_a_script_pipeline_is_refused_and_the_log_shows_only_cmdlets(hyperv_gpu):
    """about_Command_Syntax: this host takes commands, never script text; nothing of the pipeline runs."""
    marker = unique("never-created")
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", marker).add_parameter("NoVHD")
                .add_statement().add_script("Get-VM | Remove-VM -Force"))
    assert ps.state == PSInvocationState.FAILED
    assert ps.had_errors
    assert "accepts only cmdlet commands" in str(ps.streams.error[0])
    names = [prop(vm, "Name") for vm in invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VM")).output]
    assert marker not in names
    logged = [c for entry in hyperv_gpu.commands() for c in entry["commands"]]
    assert any(c["is_script"] for c in logged)
    assert "Get-VM | Remove-VM" not in json.dumps(logged)  # the log names commands, never script text
    cmdlets = [c for c in logged if not c["is_script"]]
    assert {"command": "New-VM", "is_script": False, "parameters": ["Name", "NoVHD"],
            "end_of_statement": True} in cmdlets


def test_unknown_cmdlets_parameters_and_positional_arguments_are_refused(hyperv_gpu):
    """about_Parameters / Set-VMSwitch: unknown names are terminating parameter-binding errors."""
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Invoke-Expression").add_parameter("Command", "whoami"))
    assert ps.state == PSInvocationState.FAILED and "is not recognized" in str(ps.streams.error[0])
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Bogus", 1))
    assert "A parameter cannot be found that matches parameter name 'Bogus'" in str(ps.streams.error[0])
    ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("Get-VM").add_argument("x"))
    assert ps.state == PSInvocationState.FAILED and "positional" in str(ps.streams.error[0])


def test_statements_in_one_pipeline_return_all_outputs_in_one_round_trip(hyperv_gpu, gpu_run):
    """about_PowerShell_exe / Get-VM, Get-VMSwitch, Get-VMHost: add_statement batches independent reads."""
    name = unique("batch")
    gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD"))
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_statement().add_cmdlet("Get-VM").add_cmdlet(
        "Get-VMNetworkAdapter").add_statement().add_cmdlet("Get-VMHost"))
    kinds = {o.types[0] for o in ps.output}
    assert kinds == {"Microsoft.HyperV.PowerShell.VirtualMachine", "Microsoft.HyperV.PowerShell.VMNetworkAdapter",
                     "Microsoft.HyperV.PowerShell.VMHost"}
    pipelines = [e for e in hyperv_gpu.commands() if len(e["commands"]) == 4]
    assert [c["command"] for c in pipelines[-1]["commands"]] == ["Get-VM", "Get-VM", "Get-VMNetworkAdapter",
                                                                  "Get-VMHost"]


def test_an_int32_overflow_fails_the_pipeline_and_the_connection_survives(gpu_run):
    """New-VM (-MemoryStartupBytes <Int64>): a Python int is sent as <I32>; 4 GiB must be TaggedValue I64."""
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("i32"))
                 .add_parameter("MemoryStartupBytes", 4 * 1024**3))
    assert ps.state == PSInvocationState.FAILED
    assert "Int64" in str(ps.streams.error[0])
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("i64"))
                 .add_parameter("MemoryStartupBytes", TaggedValue("I64", 4 * 1024**3)).add_parameter("NoVHD"))
    assert ps.state == PSInvocationState.COMPLETED
    assert prop(ps.output[0], "MemoryStartup") == 4 * 1024**3


def test_a_connection_dropped_mid_pipeline_is_a_client_error_and_the_next_pool_works(hyperv_plain):
    """Set-VM: the fault between New-VM and Set-VM -Notes (hyperv.md section 6); the created VM remains."""
    name = unique("pending")
    hyperv_plain.control("fault", drop="Set-VM")
    pool = RunspacePool(wsman(hyperv_plain))
    pool.open()
    ps = PowerShell(pool)
    ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD")
    ps.add_statement().add_cmdlet("Get-VM").add_cmdlet("Set-VM").add_parameter("Notes", "marker")
    with pytest.raises(requests.exceptions.ConnectionError):
        ps.invoke()
    ps = invoke(hyperv_plain, lambda ps: ps.add_cmdlet("Get-VM"))
    created = [vm for vm in ps.output if prop(vm, "Name") == name]
    assert len(created) == 1 and prop(created[0], "Notes") == ""


def test_a_reboot_loses_the_runspaces(hyperv_plain):
    """Restart-Computer: a host reboot ends every remote session; a new pool works."""
    pool = RunspacePool(wsman(hyperv_plain))
    pool.open()
    assert hyperv_plain.control("reboot")["runspaces_lost"] >= 1
    with pytest.raises(Exception):  # noqa: B017 - reset connection or "shell was not found", both fatal
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost")
        ps.invoke()
    ps = invoke(hyperv_plain, lambda ps: ps.add_cmdlet("Get-VMHost"))
    assert ps.state == PSInvocationState.COMPLETED


def test_a_slow_cmdlet_delays_its_reply_without_failing(hyperv_plain):
    """Get-VMHost: the slow fault sleeps before the cmdlet runs (no timing asserted)."""
    hyperv_plain.control("fault", slow="Get-VMHostSupportedVersion", seconds=0.2)
    try:
        ps = invoke(hyperv_plain, lambda ps: ps.add_cmdlet("Get-VMHostSupportedVersion"))
    finally:
        hyperv_plain.control("clear")
    assert [prop(v, "Version") for v in ps.output][-1] == "10.0"


def test_the_launcher_settings_name_server_user_and_ca_but_never_the_password(hyperv_gpu, hyperv_sriov):
    """The lab's HYPERV_* variables: HYPERV_CA_FILE only over TLS; the password is read from its file."""
    assert hyperv_gpu.settings() == {"HYPERV_SERVER": hyperv_gpu.server, "HYPERV_USERNAME": hyperv_gpu.user,
                                     "HYPERV_TLS": "false"}
    assert hyperv_sriov.settings()["HYPERV_CA_FILE"] == hyperv_sriov.ca_file
    assert hyperv_sriov.settings()["HYPERV_TLS"] == "true"
    exports = "\n".join(hyperv_sriov.shell_exports())
    assert hyperv_sriov.password not in exports and "HYPERV_PASSWORD" in exports
    assert hyperv_sriov.environ()["HYPERV_PASSWORD"] == hyperv_sriov.password


def test_a_reboot_applies_the_vms_stop_and_start_actions(hyperv_plain):
    """Set-VM -AutomaticStopAction / -AutomaticStartAction: what a host restart does to running VMs."""
    names = {action: unique(f"boot-{action}") for action in ("Nothing", "StartIfRunning")}

    def build(ps):
        for action, name in names.items():
            ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD").add_cmdlet("Set-VM")
            ps.add_parameter("AutomaticStartAction", action).add_parameter("AutomaticStopAction", "TurnOff")
            ps.add_parameter("Passthru").add_cmdlet("Start-VM").add_statement()

    assert invoke(hyperv_plain, build).streams.error == []
    hyperv_plain.control("reboot")
    states = {prop(vm, "Name"): str(prop(vm, "State")) for vm in
              invoke(hyperv_plain, lambda ps: ps.add_cmdlet("Get-VM")).output}
    assert states[names["Nothing"]] == "Off" and states[names["StartIfRunning"]] == "Running"


def test_error_action_stop_makes_a_missing_vm_terminating_and_silently_continue_hides_it(gpu_run):
    """about_CommonParameters (-ErrorAction): Stop turns the non-terminating error into a failed pipeline."""
    missing = uuid.uuid4()
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", missing).add_parameter("ErrorAction", "Stop")
                 .add_statement().add_cmdlet("Get-VMHost"))
    assert ps.state == PSInvocationState.FAILED and str(missing) in str(ps.streams.error[0])
    assert ps.output == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", missing)
                 .add_parameter("ErrorAction", "SilentlyContinue"))
    assert ps.state == PSInvocationState.COMPLETED and ps.streams.error == []


def test_a_large_reply_arrives_over_several_receives(hyperv_plain):
    """Get-VM with many VMs: like a real host, the reply is split over Receive requests of bounded size."""
    names = [unique("bulk") for _ in range(200)]
    responses: list[int] = []

    def build(ps):
        for name in names:
            ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD").add_statement()

    invoke(hyperv_plain, build)
    with RunspacePool(wsman(hyperv_plain)) as pool:
        pool.connection.transport.session.hooks["response"].append(lambda r, *a, **k: responses.append(len(r.content)))
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VM")
        ps.invoke()
    assert set(names) <= {prop(vm, "Name") for vm in ps.output}
    assert len(responses) >= 4, responses  # Command, then at least three Receives
    assert max(responses) < 153_600  # pypsrp's default MaxEnvelopeSize


def test_pools_in_parallel_each_get_their_own_replies(hyperv_gpu):
    """New-VM from several runspace pools at once (a driver with bounded parallelism): no reply is mixed up."""
    names = [unique("parallel") for _ in range(6)]

    def create(name):
        ps = invoke(hyperv_gpu, lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD")
                    .add_statement().add_cmdlet("Get-VMHostSupportedVersion").add_parameter("Default"))
        return [prop(o, "Name") for o in ps.output]

    with ThreadPoolExecutor(3) as pool:
        created = list(pool.map(create, names))
    assert [outputs[0] for outputs in created] == names
