"""The runtimes' build backend: setuptools, with the gRPC transport compiled in wheels.

A wheel (``uv build --wheel``, an image build) compiles the HTTP/2 + gRPC server
(``transports/h2grpc.py``, ``transports/h2answers.py``) to C extension modules with mypyc: the
interpreted framing cost a gRPC call more than the REST transport's C parsers (httptools,
orjson) cost a REST call. An editable install (``uv sync``, the dev environment) compiles
nothing, so an edited source file is what runs. ``--config-settings pure=1`` (or
``KSS_RUNTIMES_PURE=1``) builds a pure-Python wheel, for platforms without a C compiler.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools

# Hooks that compile nothing are setuptools' own.
from setuptools.build_meta import (  # noqa: F401
    build_editable,
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

#: mypyc ships with mypy: the version the workspace pins in uv.lock.
MYPYC = "mypy==2.4.1"
#: Read by setup.py: compile the modules it lists.
COMPILE_ENV = "KSS_RUNTIMES_COMPILE"


def _pure(config_settings: dict[str, Any] | None) -> bool:
    value = (config_settings or {}).get("pure") or os.environ.get("KSS_RUNTIMES_PURE", "")
    return str(value).lower() in ("1", "true", "yes")


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires = _setuptools.get_requires_for_build_wheel(config_settings)
    return requires if _pure(config_settings) else [*requires, MYPYC]


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    previous = os.environ.get(COMPILE_ENV)
    os.environ[COMPILE_ENV] = "0" if _pure(config_settings) else "1"
    try:
        return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    finally:
        if previous is None:
            del os.environ[COMPILE_ENV]
        else:
            os.environ[COMPILE_ENV] = previous
