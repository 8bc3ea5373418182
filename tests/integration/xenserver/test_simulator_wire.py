"""The simulated pool speaks XAPI's XML-RPC as the unmodified ``xenapi`` client expects it: envelopes, OpaqueRefs,
ints as strings, the real error codes and parameters, and a pool member that points at its master."""

from __future__ import annotations

import ssl
import xmlrpc.client

import pytest
import XenAPI

from tests.support.xenserver import failure, new_vm, session, template


def test_a_wrong_password_is_refused_with_session_authentication_failed_naming_the_user(fresh_xenserver):
    with pytest.raises(XenAPI.Failure) as refused, session(fresh_xenserver, password="not-it"):
        pass
    assert refused.value.details == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]


def test_a_pool_member_answers_host_is_slave_with_the_masters_address(fresh_xenserver):
    with pytest.raises(XenAPI.Failure) as refused, session(fresh_xenserver, url=fresh_xenserver.member_url):
        pass
    assert refused.value.details == ["HOST_IS_SLAVE", "127.0.0.1"]


def test_the_envelope_is_status_and_value_with_opaque_refs(fresh_xenserver):
    context = ssl.create_default_context(cafile=fresh_xenserver.ca_file)
    raw = xmlrpc.client.ServerProxy(fresh_xenserver.url, context=context)
    login = raw.session.login_with_password("root", fresh_xenserver.password, "2.21", "test")
    assert set(login) == {"Status", "Value"} and login["Status"] == "Success"
    assert login["Value"].startswith("OpaqueRef:")
    hosts = raw.host.get_all_records(login["Value"])["Value"]
    assert {record["name_label"] for record in hosts.values()} == {"xs-gpu", "xs-sriov", "xs-plain"}
    assert all(isinstance(record["API_version_major"], str) for record in hosts.values())  # ints travel as strings
    unknown = raw.VM.no_such_call(login["Value"])
    assert unknown == {"Status": "Failure", "ErrorDescription": ["MESSAGE_METHOD_UNKNOWN", "VM.no_such_call"]}


def test_an_int_sent_as_xml_rpc_i4_is_a_field_type_error_and_changes_nothing(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "typed")
        assert failure(api.VM.set_VCPUs_max, vm, 4) == ["FIELD_TYPE_ERROR", "value"]
        assert api.VM.get_VCPUs_max(vm) == "1"


def test_a_stale_ref_is_handle_invalid_naming_its_class(fresh_xenserver):
    with session(fresh_xenserver) as api:
        assert failure(api.VM.get_record, "OpaqueRef:00000000-0000-0000-0000-000000000000") == [
            "HANDLE_INVALID", "VM", "OpaqueRef:00000000-0000-0000-0000-000000000000"]
        assert failure(api.VM.get_by_uuid, "nope") == ["UUID_INVALID", "VM", "nope"]


def test_the_wrong_number_of_parameters_is_refused_with_the_counts(fresh_xenserver):
    with session(fresh_xenserver) as api:
        assert failure(api.VM.clone, template(api)) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.clone", "3", "2"]


def test_get_all_records_where_filters_with_xapis_expression_language(fresh_xenserver):
    with session(fresh_xenserver) as api:
        new_vm(api, "plain-vm")
        where = 'field "is_a_template" = "false" and field "is_control_domain" = "false"'
        assert [r["name_label"] for r in api.VM.get_all_records_where(where).values()] == ["plain-vm"]
        domains = api.VM.get_all_records_where('not (field "is_control_domain" = "false")')
        assert len(domains) == 3
        assert failure(api.VM.get_all_records_where, 'field "is_a_template" ==') [0] == "INVALID_VALUE"
        assert failure(api.VM.get_all_records_where, 'field "no_such_field" = "x"')[0] == "INVALID_VALUE"


def test_a_call_with_a_logged_out_session_is_session_invalid(fresh_xenserver):
    context = ssl.create_default_context(cafile=fresh_xenserver.ca_file)
    raw = xmlrpc.client.ServerProxy(fresh_xenserver.url, context=context)
    handle = raw.session.login_with_password("root", fresh_xenserver.password, "2.21", "test")["Value"]
    raw.session.logout(handle)
    assert raw.VM.get_all(handle)["ErrorDescription"] == ["SESSION_INVALID", handle]
