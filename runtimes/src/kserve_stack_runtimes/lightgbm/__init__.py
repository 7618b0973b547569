"""The lightgbm runtime entry point (see ``__main__``)."""
