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


@pytest.mark.parametrize(("value", "written"), [("4GB", "4GiB"), ("512MB", "512MiB"), ("1.5 TB", "1.5TiB"),
                                                ("4gb", "4GiB"), ("100kB", "100KiB")])
def test_decimal_units_are_refused_naming_the_binary_unit_to_write(value, written):
    with pytest.raises(SizeError, match=rf"decimal units .* are not accepted, sizes are binary; write '{written}'"):
        parse_size(value, "MiB")
