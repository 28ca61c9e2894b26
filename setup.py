"""Build the compiled core (hotmem/_core.pyx and the .pxi files it includes).

hotmem/defs.pxd, the C face of hotmem/defs.py, is generated here first, so the compiled core and
the pure-Python twin take every shared constant from the one Python definition.
"""
import importlib.util
import pathlib

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent


def write_defs_pxd():
    """Regenerate hotmem/defs.pxd from hotmem/defs.py (loaded alone: no hotmem package import)."""
    spec = importlib.util.spec_from_file_location("_hotmem_defs", HERE / "hotmem" / "defs.py")
    defs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(defs)
    pxd = HERE / "hotmem" / "defs.pxd"
    text = defs.pxd_source()
    if not pxd.exists() or pxd.read_text() != text:
        pxd.write_text(text)


write_defs_pxd()

ext = Extension(
    "hotmem._core",
    ["hotmem/_core.pyx"],
    include_dirs=[numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O2"],
)

setup(
    ext_modules=cythonize(
        [ext],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
