"""The open RTL backend: da4ml's Verilog from the quantized graph (``backend``, ``fixed_graph``), its
Verilator emulator (``verilator``, ``emulator``), firmware wrappers, testbenches and project scripts
(``firmware``), synthesis with yosys (``yosys``) and place and route with nextpnr (``nextpnr``).

Imports: ``edgekit.core``, ``edgekit.model``, the shared ``edgekit.backends`` modules (``base``,
``native_pool``) and its own modules; never another backend.
"""
