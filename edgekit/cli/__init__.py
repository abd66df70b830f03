"""The ``edgekit`` command: a thin layer over the library. Each subcommand parses its arguments, calls one
library function (``compile_model``, ``validate_build``, ``sweep_grid``, ...) and turns its result or its
``EdgekitError`` into output and an exit code.

Imports: any package of edgekit; nothing imports it.
"""
