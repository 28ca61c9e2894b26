"""Build the compiled core (hotmem/_core.pyx and the .pxi files it includes)."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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
