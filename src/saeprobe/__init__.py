"""saeprobe: do sparse autoencoders help on a real downstream task?

Data flows one way: text -> activations -> SAEs -> features -> probes/interp -> report.
Each stage is a subpackage; the CLI is a thin layer over their functions.
"""

__version__ = "0.1.0"
