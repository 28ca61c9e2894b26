# Shared cimports and helpers for every include of the compiled core.
cimport cython
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memset

cnp.import_array()

import errno as _errno
from hotmem.errors import HotplugError
