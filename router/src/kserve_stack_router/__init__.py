"""kserve-stack router package."""

from importlib.metadata import version

__version__ = version("kserve-stack-router")
