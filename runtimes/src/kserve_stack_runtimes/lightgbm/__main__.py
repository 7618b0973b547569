"""``python -m kserve_stack_runtimes.lightgbm``: KServe-style entry of the lightgbm runtime."""

from kserve_stack_runtimes.cli import runtime_main

if __name__ == "__main__":
    runtime_main("lightgbm")
