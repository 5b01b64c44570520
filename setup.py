"""The compiled accelerator (`tracer._accel`): built on install when a C compiler is there, else skipped.

Everything else is in pyproject.toml. `optional=True`: an install without a compiler (or without
the Python headers) still works, and the tracer runs its pure-Python path (`tracer.accel`).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tracer._accel", ["tracer/_accel.c"], optional=True, extra_compile_args=["-O2"])])
