"""End-to-end jobs that chain the stages (toy planted-feature proof; later the full study)."""
