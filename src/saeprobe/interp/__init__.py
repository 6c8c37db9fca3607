"""Interpretability: latent examples, autointerp, dataset debugging and latent dashboards.

Data flows one way, each stage reading the files the previous one wrote:

    SAE + activation store --latents--> records DIR (records.py)
    records --autointerp--> explanations + scores, autointerp.json (autointerp.py)
    a sweep's SAEs --autointerp-sweep--> per-SAE autointerp + the study's two figures (sweep.py)
    dataset config + model + SAE --debug-dataset--> findings.{json,md,html} (debug_dataset.py)
    records (+ autointerp.json) --dashboard--> one self-contained HTML page (dashboard.py)
"""
