"""Build a throwaway extension from some of the core's .pxi files, for working on one of them
without breaking the shared build of hotmem/_core.pyx.

    .venv/bin/python tools/devbuild.py NAME a.pxi [b.pxi ...]

builds module ``_dev_NAME`` (common.pxi first, then the given includes, in order) under
/tmp/hotmem-dev/NAME and prints the directory to put on sys.path / PYTHONPATH. Point the test
fixture at it with ``HOTMEM_CORE_MODULE=_dev_NAME PYTHONPATH=/tmp/hotmem-dev/NAME``.
"""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    name, includes = argv[0], argv[1:]
    out = f"/tmp/hotmem-dev/{name}"
    os.makedirs(out, exist_ok=True)
    pyx = os.path.join(out, f"_dev_{name}.pyx")
    with open(pyx, "w") as f:
        f.write("# cython: language_level=3\n")
        for inc in ["common.pxi", *includes]:
            f.write(f'include "{os.path.join(ROOT, "hotmem", "_cy", inc)}"\n')
    ext = Extension(f"_dev_{name}", [pyx], include_dirs=[numpy.get_include()],
                    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                    extra_compile_args=["-O2"])
    dist = Distribution({"ext_modules": cythonize([ext], language_level=3, quiet=True,
                         include_path=[ROOT],                # hotmem/defs.pxd
                         compiler_directives={"boundscheck": False, "wraparound": False,
                                              "cdivision": True, "initializedcheck": False})})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = False
    cmd.build_lib = out
    cmd.build_temp = os.path.join(out, "tmp")
    cmd.ensure_finalized()
    cmd.run()
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
