"""The compile pipeline, in the order a build runs it: ``planning`` (every check before any work),
``steps`` (each stage run through the build folder's cache), ``compile`` (``compile_model``: plan, train
and prune, export and quantize, compile, validate, manifest), ``verify`` (each target held to its
reference), ``manifest`` (the build's record), ``reopen`` (validate and report an existing build) and
``coverage`` (the layer table ``edgekit ops`` prints).

Imports: ``edgekit.core``, ``edgekit.model``, ``edgekit.stages``, ``edgekit.backends`` (through
``get_backend`` and the backends' public modules), ``edgekit.report``, and ``edgekit.api`` inside a
function (``BuildResult.load``).
"""
