"""The TensorRT backend: engine builds and runs (``backend``) and the ONNX preparation and checks it
needs, which run without TensorRT (``graph``).

Imports: ``edgekit.core``, the shared ``edgekit.backends`` modules (``base``, ``native_pool``,
``cuda_device``) and its own modules; never another backend.
"""
