"""The shared input checks (``_validation``): one message format for every entry point."""

import numpy as np
import pytest

from napari_lowlight._validation import check_bits, check_int


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3)])
def test_check_int_accepts_integers_and_returns_int(value):
    result = check_int(value, "n", low=1, high=5)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [3.0, "3", None, True, np.bool_(True), [3]])
def test_check_int_refuses_non_integers_with_type_error(value):
    with pytest.raises(TypeError, match=r"^n must be an integer in 1\.\.5, got "):
        check_int(value, "n", low=1, high=5)


@pytest.mark.parametrize(("bounds", "value", "message"), [
    ({"low": 1, "high": 5}, 0, "n must be in 1..5, got 0"),
    ({"low": 1, "high": 5}, 6, "n must be in 1..5, got 6"),
    ({"low": 8}, 3, "n must be >= 8, got 3"),
    ({"high": 2}, 3, "n must be <= 2, got 3"),
])
def test_check_int_range_errors_name_the_range(bounds, value, message):
    with pytest.raises(ValueError) as info:
        check_int(value, "n", **bounds)
    assert str(info.value) == message


def test_check_int_none_only_where_allowed():
    assert check_int(None, "tile", low=8, allow_none=True) is None
    with pytest.raises(TypeError, match="tile must be an integer >= 8 or None, got float"):
        check_int(8.5, "tile", low=8, allow_none=True)
    with pytest.raises(TypeError, match="an integer, got NoneType"):
        check_int(None, "n")


def test_check_bits_messages_are_unchanged():
    with pytest.raises(TypeError, match=r"bits must be an integer in 1\.\.16, got float 8\.0"):
        check_bits(8.0)
    with pytest.raises(ValueError, match=r"bits must be in 1\.\.16, got 17"):
        check_bits(17)
