"""Extension modules of the runtimes' wheel; the package itself is described in pyproject.toml.

``build_support/compiled_wheel.py`` sets KSS_RUNTIMES_COMPILE=1 for a wheel build: the modules
below are then compiled by mypyc (their .py sources ship beside them). Editable installs and
pure-Python wheels compile nothing.
"""

import os

from setuptools import setup

#: The gRPC server's hot path (every call runs through it). mypyc compiles typed code as it is;
#: these modules are checked by `mypy --strict` like the rest.
COMPILED = [
    "src/kserve_stack_runtimes/transports/h2grpc.py",
    "src/kserve_stack_runtimes/transports/h2answers.py",
]

ext_modules = []
if os.environ.get("KSS_RUNTIMES_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(
        ["--config-file", "build_support/mypyc.ini", *COMPILED],
        opt_level="3",
        group_name="kserve_stack_runtimes_transports",
    )

setup(ext_modules=ext_modules)
