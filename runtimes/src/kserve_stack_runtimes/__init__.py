"""kserve-stack runtimes package."""

from importlib.metadata import version

__version__ = version("kserve-stack-runtimes")
