"""Extension modules of the runtimes' wheel; the package itself is described in pyproject.toml.

``build_support/compiled_wheel.py`` sets KSS_RUNTIMES_COMPILE=1 for a wheel build: the modules
below are then compiled by mypyc (their .py sources ship beside them). Editable installs and
pure-Python wheels compile nothing.
"""

import os

from setuptools import setup

#: The gRPC transport's hot path (every call runs through it): HTTP/2 framing, HPACK answers, the
#: services and ModelInfer's wire codec. mypyc compiles typed code as it is; these modules are
#: checked by `mypy --strict` like the rest (transports/health.py has an async generator, which
#: mypyc does not compile).
COMPILED = [
    "src/kserve_stack_runtimes/transports/h2grpc.py",
    "src/kserve_stack_runtimes/transports/h2answers.py",
    "src/kserve_stack_runtimes/transports/grpc.py",
    "src/kserve_stack_runtimes/transports/infer_wire.py",
    "src/kserve_stack_runtimes/transports/contents.py",
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
