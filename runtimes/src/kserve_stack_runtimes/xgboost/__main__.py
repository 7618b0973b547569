"""``python -m kserve_stack_runtimes.xgboost``: KServe-style entry of the xgboost runtime."""

from kserve_stack_runtimes.cli import runtime_main

if __name__ == "__main__":
    runtime_main("xgboost")
