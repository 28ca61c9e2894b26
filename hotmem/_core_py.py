"""Pure-Python twin of the compiled core (hotmem/_core.pyx).

Same classes and functions, same signatures, same results: the reference the compiled core is
checked against, and the fallback when the extension is not built (``HOTMEM_BACKEND=python``).
"""
from hotmem._py.altmap import *  # noqa: F401,F403
from hotmem._py.memmap import *  # noqa: F401,F403
from hotmem._py.pgalloc import *  # noqa: F401,F403
from hotmem._py.pgtable import *  # noqa: F401,F403
from hotmem._py.buddy import *  # noqa: F401,F403
from hotmem._py.scan import *  # noqa: F401,F403

BACKEND = "python"
