import pytest

from virtplane.units import SizeError, parse_size


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (4096, "MiB", 4096),
    ("4GiB", "MiB", 4096),
    ("512MiB", "MiB", 512),
    ("1.5GiB", "MiB", 1536),
    ("2 GiB", "MiB", 2048),
    (20, "GiB", 20),
    ("1TiB", "GiB", 1024),
    ("40G", "GiB", 40),
    ("10240MiB", "GiB", 10),
])
def test_sizes_are_read_in_the_callers_unit(value, unit, expected):
    assert parse_size(value, unit) == expected


@pytest.mark.parametrize("value", ["lots", "", "4 parsecs", None, True, -1, 0, "0GiB", [4]])
def test_unreadable_sizes_are_refused_with_what_is_accepted(value):
    with pytest.raises(SizeError, match=r"'4GiB'|greater than zero"):
        parse_size(value, "MiB")


def test_sizes_that_are_not_whole_units_are_refused():
    with pytest.raises(SizeError, match="whole number of GiB"):
        parse_size("1500MiB", "GiB")
