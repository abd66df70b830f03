"""The user's model and data: the zoo and ``module:factory`` resolution, data loaders and data files,
the torch model and its training, sparsity, the quantization graph (its node kinds and average pooling),
the brevitas model built from it, QONNX graph helpers, activation tables, layer-by-layer localization and
autoencoder figures.

Imports: ``edgekit.core`` and ``edgekit.model`` only.
"""
