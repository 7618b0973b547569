"""kserve-stack api package."""

from importlib.metadata import version

__version__ = version("kserve-stack-api")
