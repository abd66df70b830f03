"""Number formats in the report (fixed<W,I>) and the warning for inputs one quantizer cannot resolve."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.core.fixed_formats import describe_format
from edgekit.model.data import input_range_warning


@pytest.mark.parametrize(
    ("scale", "bits", "signed", "expected"),
    [
        (2.0**-4, 8, True, "fixed<8,4>"),  # 4 fraction bits: integer part 4 bits, sign included
        (1.0, 8, True, "fixed<8,8>"),  # integer steps
        (2.0**-6, 6, False, "ufixed<6,0>"),
        (2.0**3, 8, True, "fixed<8,11>"),  # coarser than integers
        ([2.0**-5, 2.0**-3], 6, True, "fixed<6,1..3>"),  # per channel
        (0.0123, 8, True, "int8 x 0.0123"),  # not a power of two: no fixed-point type
    ],
)
def test_formats_from_scales(scale: object, bits: int, signed: bool, expected: str) -> None:
    assert describe_format(np.asarray(scale), bits, signed) == expected


def test_a_feature_a_hundred_times_wider_is_warned_about() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, size=(100, 4)).astype(np.float32)
    x[0] = 1.0  # every feature reaches |x| = 1, planted
    assert input_range_warning(x, 8) is None
    x[:, 2] *= 100.0  # a pT in GeV beside features of order one
    text = input_range_warning(x, 8)
    assert text is not None
    assert "differ in range by 100x" in text and "feature 2: |x| up to 100" in text
    assert "steps by 1" in text and "about 1.0 steps" in text  # 128 / 2^7: integer steps
    assert input_range_warning(x, 16) is None  # 16 bits resolve both (--quant w6a8i16)


def test_channels_of_maps_are_the_features() -> None:
    x = np.ones((10, 3, 4, 4), np.float32)
    x[:, 1] *= 50.0
    text = input_range_warning(x, 8)
    assert text is not None and "channel 1" in text
