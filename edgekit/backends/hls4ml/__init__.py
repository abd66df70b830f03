"""The hls4ml backend: the Backend class and its hooks (``backend``), hls4ml's conversion of a model
(``convert``) with the QONNX graph's checks and rewrites before it (``graph_prep``) and the fixed-point
types edgekit sets (``precision``), the HLS project and its emulation build (``project``), the target's
backend options (``options``), what the report and the estimate read from hls4ml's model (``layer_facts``),
the C-simulation emulator in a worker pool (``emulator``), edgekit's resource estimate (``estimate``),
vendor C synthesis (``synth``) and its report parser (``reports``). The only package that imports hls4ml.

Imports: ``edgekit.core``, ``edgekit.model``, the shared ``edgekit.backends`` modules (``base``,
``native_pool``) and its own modules; never another backend.
"""
