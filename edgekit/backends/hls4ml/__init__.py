"""The hls4ml backend: the HLS project (``backend``), its C-simulation emulator in a worker pool
(``emulator``), edgekit's resource estimate (``estimate``), vendor C synthesis (``synth``) and its
report parser (``reports``). The only package that imports hls4ml.

Imports: ``edgekit.core``, ``edgekit.model``, the shared ``edgekit.backends`` modules (``base``,
``native_pool``) and its own modules; never another backend.
"""
