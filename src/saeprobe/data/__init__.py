"""Data: text corpora, prompt datasets, and synthetic planted-feature activations."""
