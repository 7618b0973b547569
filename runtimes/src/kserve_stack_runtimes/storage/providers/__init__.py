"""One module per URI scheme family; :mod:`..registry` maps schemes to them."""
