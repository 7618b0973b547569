"""``python -m kserve_stack_runtimes.custom``: KServe-style entry of the custom runtime."""

from kserve_stack_runtimes.cli import runtime_main

if __name__ == "__main__":
    runtime_main("custom")
