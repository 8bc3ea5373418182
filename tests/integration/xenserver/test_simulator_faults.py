"""Faults the simulated pool injects on request: a connection dropped before or after a call runs, and a slow
task."""

from __future__ import annotations

import http.client
import time

import pytest

from tests.support.xenserver import new_vm, session, template


def test_a_connection_dropped_after_the_call_ran_leaves_its_effect_without_an_answer(fresh_xenserver):
    # Python's xmlrpc transport sends a request again once when the connection drops (Transport.request), so a
    # lost answer can mean the call ran twice: that is what a driver on the plain client has to expect.
    fresh_xenserver.control("fault", drop="VM.clone", when="after", times=2)
    with session(fresh_xenserver) as api, pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api.VM.clone(template(api), "lost-answer")
    with session(fresh_xenserver) as api:
        assert len(api.VM.get_by_name_label("lost-answer")) == 2


def test_a_connection_dropped_before_the_call_changes_nothing(fresh_xenserver):
    fresh_xenserver.control("fault", drop="VM.clone", when="before", times=2)
    with session(fresh_xenserver) as api, pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api.VM.clone(template(api), "never-made")
    with session(fresh_xenserver) as api:
        assert api.VM.get_by_name_label("never-made") == []


def test_a_slow_task_stays_pending_and_then_succeeds(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "slow")
        api.VM.start(vm, False, False)
        fresh_xenserver.control("fault", slow="VM.clean_shutdown", seconds=0.5)
        task = api.Async.VM.clean_shutdown(vm)
        assert api.task.get_status(task) == "pending" and api.VM.get_power_state(vm) == "Running"
        deadline = time.monotonic() + 10
        while api.task.get_status(task) == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (api.task.get_status(task), api.task.get_result(task)) == ("success", "")
        assert api.VM.get_power_state(vm) == "Halted"
        api.task.destroy(task)


def test_a_failed_task_carries_the_error_code_and_its_parameters(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "halted")
        task = api.Async.VM.clean_shutdown(vm)
        deadline = time.monotonic() + 10
        while api.task.get_status(task) == "pending" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert api.task.get_status(task) == "failure"
        assert api.task.get_error_info(task) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        clone = api.Async.VM.clone(template(api), "async-clone")
        while api.task.get_status(clone) == "pending":
            time.sleep(0.02)
        assert api.task.get_result(clone) == f"<value>{api.VM.get_by_name_label('async-clone')[0]}</value>"
