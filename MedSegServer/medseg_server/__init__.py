"""MedSeg server: a MONAI Label compatible segmentation server for liver and vessel CT."""

__version__ = "0.1.0"
