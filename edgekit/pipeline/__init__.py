"""The compile pipeline, in the order a build runs it: ``planning`` (every check before any work;
``given_graphs`` for ONNX/QONNX files and brevitas models), ``plan`` (a build planned), ``steps`` (each
stage run through the build folder's cache), ``compile`` (``compile_model``: plan, train and prune, export
and quantize, compile, validate, manifest), ``verify`` (each target held to its reference), ``manifest``
(the build's record), ``reopen`` (validate and report an existing build), ``request`` (what a build is
asked for and gives back) and ``coverage`` (the layer table ``edgekit ops`` prints).

Imports: ``edgekit.core``, ``edgekit.model``, ``edgekit.stages``, ``edgekit.backends`` (through
``get_backend`` and the backends' public modules), ``edgekit.report``, and ``edgekit.api`` inside a
function (``BuildResult.load``).
"""
