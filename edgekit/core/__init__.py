"""The core every other package builds on: errors, the configuration and its schema, target profiles,
artifact and result types, the build folder and what its stages were made from, the runner contract,
latency measurement, metrics, the external-tool runner and progress output.

Imports: nothing of edgekit outside ``edgekit.core``, and no heavy library at import time (the device
side of hardware-in-the-loop runs on these modules without torch).
"""
