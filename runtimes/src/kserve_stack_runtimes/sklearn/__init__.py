"""The sklearn runtime entry point (see ``__main__``)."""
