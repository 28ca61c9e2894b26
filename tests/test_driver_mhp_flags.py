"""docs/driver-mhp-flags.md is the generated table; the flags are the drivers' own calls."""
import os

import pytest

from hotmem.drivers.mhp_flags import driver_call, driver_flags_table
from hotmem.mm import memory_hotplug as mh


def test_doc_is_generated_table():
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "driver-mhp-flags.md")
    with open(path) as f:
        assert f.read().endswith(driver_flags_table())


# read in Debian's linux-source-6.1 (6.1.176): the literal flags of each call
@pytest.mark.parametrize("driver,flags,mom", [
    ("ACPI memhotplug", mh.MHP_NID_IS_MGID, True),          # acpi_memhotplug.c:173, 215
    ("pseries DLPAR", mh.MHP_NONE, False),                   # hotplug-memory.c:654
    ("s390 sclp", mh.MHP_NONE, False),                       # sclp_cmd.c:408
    ("virtio-mem", mh.MHP_MERGE_RESOURCE | mh.MHP_NID_IS_MGID, False),   # virtio_mem.c:647
    ("dax/kmem", mh.MHP_NID_IS_MGID, False),                 # kmem.c:143
    ("Hyper-V balloon", mh.MHP_MERGE_RESOURCE, False),       # hv_balloon.c:738
    ("Xen balloon", mh.MHP_MERGE_RESOURCE, False),           # balloon.c:341
])
def test_6_1_calls(driver, flags, mom):
    c = driver_call(driver, "6.1")
    assert c.flags == flags and bool(c.memmap_on_memory) == mom


def test_virtio_mem_never_memmap_on_memory():
    """The Firecracker question, per version."""
    for kernel in ("v2", "5.13", "6.1", "6.6", "6.8", "6.11"):
        c = driver_call("virtio-mem", kernel)
        assert not c.flags & mh.MHP_MEMMAP_ON_MEMORY and c.memmap_on_memory is None
