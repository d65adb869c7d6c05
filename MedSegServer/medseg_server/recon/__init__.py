"""3D reconstruction for surgical planning: surfaces, vessel trees, measures, exports.

``reconstruct(label, image=None, classes=None, options=None)`` then ``write_outputs(rec, out_dir)``;
``medseg recon`` and ``POST /recon/{image}`` wrap the two.
"""

from .outputs import write_outputs, zip_outputs
from .pipeline import ReconError, Reconstruction, reconstruct

__all__ = ["ReconError", "Reconstruction", "reconstruct", "write_outputs", "zip_outputs"]
