"""Harvest residual-stream activations into a sharded on-disk store, and read them back."""
