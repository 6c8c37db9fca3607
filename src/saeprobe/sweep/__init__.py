"""Sweeps over SAE architectures and sparsity settings: config, runner, figures."""
