"""lib/cmdline.c:memparse as the model reads sizes: every suffix the kernel knows (K, M, G, T, P, E),
hex, and 64-bit overflow refused with EINVAL."""
import errno

import pytest

from hotmem.cmdline import memparse
from hotmem.errors import HotplugError


@pytest.mark.parametrize("text, expected", [
    ("128M", 128 * 2**20), ("1G", 2**30), ("64T", 64 * 2**40),
    ("1P", 2**50), ("4p", 4 * 2**50), ("15E", 15 * 2**60), ("0x8000000", 2**27),
])
def test_memparse_suffixes(text, expected):
    assert memparse(text) == expected


def test_memparse_refuses_past_64_bits():
    # 16 EiB is 2**64: one past an unsigned long long
    with pytest.raises(HotplugError) as e:
        memparse("16E")
    assert e.value.errno == errno.EINVAL and "16E" in str(e.value)
