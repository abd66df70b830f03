"""What a build reports, read from its build folder: ``markdown`` (``report.md``; its hardware sections in
``hardware``), ``html`` (``report.html``, one self-contained file) and ``plots`` (the SVG charts both HTML
reports draw).

Imports: ``edgekit.core`` and ``edgekit.model`` (autoencoder figures) only: a report never runs a stage
or a backend, so it renders the same from the same build folder.
"""
