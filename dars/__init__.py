"""dars: self-training with re-distributed pseudo labels (DARS, ICCV 2021), ST and CBST."""

__version__ = "0.1.0"
