"""cockpit: a terminal training cockpit for torchvision Faster R-CNN detectors.

Importing this package must stay cheap: no torch, no textual (``cockpit --help`` relies on it).
"""

__version__ = "0.1.0"
