"""kserve-stack epp package."""

from importlib.metadata import version

__version__ = version("kserve-stack-epp")
