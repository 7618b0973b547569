"""The xgboost runtime entry point (see ``__main__``)."""
