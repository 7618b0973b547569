"""``python -m kserve_stack_runtimes.sklearn``: KServe-style entry of the sklearn runtime."""

from kserve_stack_runtimes.cli import runtime_main

if __name__ == "__main__":
    runtime_main("sklearn")
