"""hotmem: a byte-accurate model of Linux memory hotplug with memmap on memory."""
from hotmem import _backend
from hotmem.errors import HotplugError

core = _backend.load()

__all__ = ["HotplugError", "core"]
__version__ = "0.1.0"
