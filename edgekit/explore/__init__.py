"""Design-space exploration: ``sweep`` (a grid of builds on Ray, ``ray_session``), its results files,
Pareto fronts and ``--best`` (``sweep_results``), the per-layer precision search (``search``), and the
Python entry points ``edgekit.sweep_grid`` / ``edgekit.search_precision`` (``api``).

Imports: ``edgekit.core``, ``edgekit.model``, ``edgekit.pipeline``, ``edgekit.report`` and ``edgekit.api``.
"""
