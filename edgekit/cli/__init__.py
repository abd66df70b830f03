"""The ``edgekit`` command: a thin layer over the library."""
