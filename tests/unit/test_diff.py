from virtplane.diff import diff
from virtplane.providers.base import FieldChange

BASE = {"cpus": 2, "memory": 2048, "disks": [{"size": 20, "storage": None, "thin": True}],
        "nics": [{"network": "app", "adapter": "paravirtual"}], "tags": ["a", "b"], "clone_from": "tpl"}


def observed(**changes):
    live = {**BASE, "clone_from": None, "disks": [{"size": 20, "storage": "ds1", "thin": True}]}
    live.update(changes)
    return live


def test_identical_state_has_no_changes():
    assert diff(BASE, observed(), ignore=frozenset({"clone_from"})) == []


def test_a_scalar_change_is_reported_with_live_old_and_declared_new():
    assert diff(BASE, observed(cpus=4), ignore=frozenset({"clone_from"})) == [FieldChange("cpus", 4, 2)]


def test_unset_desired_fields_are_never_differences():
    assert [c.path for c in diff(BASE, observed())] == ["clone_from"]


def test_list_items_are_compared_by_position_and_field():
    live = observed(disks=[{"size": 10, "storage": "ds1", "thin": True}])
    assert diff(BASE, live, ignore=frozenset({"clone_from"})) == [FieldChange("disks[0].size", 10, 20)]


def test_an_added_and_a_removed_item_are_reported_whole():
    live = observed(nics=[])
    assert diff(BASE, live, ignore=frozenset({"clone_from"})) == [
        FieldChange("nics[0]", None, {"network": "app", "adapter": "paravirtual"})]
    live = observed(nics=[*BASE["nics"], {"network": "x", "adapter": "e1000"}])
    assert diff(BASE, live, ignore=frozenset({"clone_from"})) == [
        FieldChange("nics[1]", {"network": "x", "adapter": "e1000"}, None)]


def test_plain_lists_compare_as_sets():
    assert diff(BASE, observed(tags=["b", "a"]), ignore=frozenset({"clone_from"})) == []
    assert diff(BASE, observed(tags=["a"]), ignore=frozenset({"clone_from"})) == [
        FieldChange("tags", ["a"], ["a", "b"])]


def test_an_object_field_compares_key_by_key_and_its_unset_keys_are_not_managed():
    desired = {"features": {"nesting": True, "keyctl": None}, "rootfs": {"size": 10, "storage": None}}
    live = {"features": {"nesting": False, "keyctl": True}, "rootfs": {"size": 8, "storage": "local-lvm"}}
    assert [(c.path, c.old, c.new) for c in diff(desired, live)] == [("features.nesting", False, True),
                                                                     ("rootfs.size", 8, 10)]
