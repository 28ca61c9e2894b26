"""hotmem: a byte-accurate model of Linux memory hotplug with memmap on memory."""
from hotmem import _backend
from hotmem.errors import HotplugError

core = _backend.load()

from hotmem.machine import Machine  # noqa: E402
from hotmem.mm.memory_hotplug import (MHP_MEMMAP_ON_MEMORY, MHP_MERGE_RESOURCE,  # noqa: E402
                                      MHP_NID_IS_MGID, MHP_NONE)

from hotmem import sweep  # noqa: E402  (callable: hotmem.sweep(spec) -> DataFrame)

__all__ = ["HotplugError", "Machine", "core", "sweep", "MHP_NONE", "MHP_MERGE_RESOURCE",
           "MHP_MEMMAP_ON_MEMORY", "MHP_NID_IS_MGID"]
__version__ = "0.1.0"
