"""mbv1: MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) and the paper's five applications."""

__version__ = "0.1.0"
