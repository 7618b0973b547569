"""kserve-stack controller package."""

from importlib.metadata import version

__version__ = version("kserve-stack-controller")
