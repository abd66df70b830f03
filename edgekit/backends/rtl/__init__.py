"""The open RTL backend: the backend's contract (``backend``) and its options (``options``); da4ml's Verilog
from the quantized graph (``fixed_graph``, ``lowering``) and its ports' layout (``io_layout``); its Verilator
emulator (``verilator``, ``emulator``); the firmware tops (``firmware``), testbenches (``testbenches``) and
project scripts (``project_scripts``); synthesis with yosys (``yosys``) and place and route with nextpnr
(``nextpnr``), run beside the Verilator build (``tool_runs``).

Imports: ``edgekit.core``, ``edgekit.model``, the shared ``edgekit.backends`` modules (``base``,
``native_pool``) and its own modules; never another backend.
"""
