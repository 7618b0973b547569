"""The custom runtime entry point (see ``__main__``)."""
