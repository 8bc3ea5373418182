"""``virtplane desktops``: what a broker needs of each desktop, as JSON or CSV."""

from __future__ import annotations

import json

import pytest

from tests.unit.pools.helpers import PoolProvider, PoolStack, memory_kind  # noqa: F401 - the fixture
from virtplane.errors import VirtplaneError
from virtplane.pools.listing import desktops, render

pytestmark = pytest.mark.usefixtures("memory_kind")


@pytest.fixture
def desks(tmp_path) -> PoolStack:
    desks = PoolStack(tmp_path, PoolProvider())
    desks.declare("virtplane.DesktopPool('vdi', template='gold', size=2, opts=on_ep)\n"
                  "virtplane.VirtualMachine('other', opts=on_ep)\n")
    desks.apply()
    desks.provider.vms.users = {"vdi-001": ("ana",), "vdi-002": ()}
    return desks


def test_each_desktop_is_listed_with_its_host_power_use_and_template(desks):
    rows = desktops(desks.desired, {"ep": desks.provider}, "vdi")
    assert [(r["name"], r["number"], r["power"], r["in_use"], r["template"]) for r in rows] == [
        ("vdi-001", 1, "on", True, "gold"), ("vdi-002", 2, "on", False, "gold")]
    assert rows[0]["state"] == "powered on; test tools: ana logged in"
    document = json.loads(render("vdi", rows, "json"))
    assert document["schema"] == 1 and document["pool"] == "vdi" and len(document["desktops"]) == 2


def test_csv_has_one_line_per_desktop_under_a_header(desks):
    lines = render("vdi", desktops(desks.desired, {"ep": desks.provider}, "vdi"), "csv").splitlines()
    assert lines[0] == "name,number,host,power,address,vgpu,in_use,state,template"
    assert lines[1].startswith("vdi-001,1,") and ",true," in lines[1]
    assert len(lines) == 3


def test_a_pool_the_stack_does_not_declare_is_named_with_the_ones_it_does(desks):
    with pytest.raises(VirtplaneError, match=r"declares no DesktopPool 'web' \(pools: vdi\)"):
        desktops(desks.desired, {"ep": desks.provider}, "web")
