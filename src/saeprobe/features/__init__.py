"""Per-prompt features: pooled residual activations and pooled SAE latents, cached on disk."""
