"""Synthetic portal-venous-phase abdominal CT phantoms with liver vessel ground truth.

Public API::

    make_phantom(seed, shape=(256, 256, 96), spacing=(1.5, 1.5, 2.5), *, n_tumours=None,
                 variation=None) -> Phantom
    write_case(phantom, out_dir, case_id) -> {"image": Path, "label": Path, "centerlines": Path}
    make_cohort(out_dir, cases, seed, shape=..., spacing=..., varied=False) -> ["synth_000", ...]

``variation`` (:class:`.variation.Variation`: contrast phase non-contrast / arterial / portal
venous, noise, blur, body size, subcutaneous fat, field-of-view shift) departs from the standard
scan described below; ``make_cohort(varied=True)`` draws one per case (``meta["variation"]``).
Without it the output is exactly the standard phantom.

Geometry: ``shape`` and ``spacing`` are (x, y, z). Images are LPS with identity direction and
the volume centre at the physical origin. ``sitk.GetArrayFromImage`` gives (z, y, x) arrays;
index ``(i, j, k)`` is ``array[k, j, i]``. The patient's right (liver side) is low x, anterior
is low y, superior is high z. Fields of view smaller than 384 x 384 x 240 mm get a uniformly
scaled-down body (``meta["anatomy_scale"]``).

Image: int16 HU (air -1000, fat ~-100, muscle ~50, liver 52-68, portal vein 175-205, hepatic
veins 160-190, IVC 150-175, bone 300-750, hypo-dense tumours 20-40, hyper-dense 100-130; also
lung bases, heart, spleen, kidneys, stomach, gallbladder, bowel), partial-volume blur (gaussian,
0.7 voxel) then white gaussian noise (10-15 HU std); values per tissue are drawn per case
(``meta["hu"]``).

Labels (uint8): ``LABELS = {"liver": 1, "portal_vein": 2, "hepatic_veins": 3, "ivc": 4,
"tumour": 5}``, 0 background. Each voxel has one label; ``liver`` is liver tissue that is not
vessel or tumour (so the whole organ is labels 1, 2, 3 and 5 inside it; the portal trunk and
the IVC also extend outside the liver). Tumours never touch each other or the vessels, so the
connected components of label 5 are the tumours (``meta["n_tumours"]``, ``meta["tumours"]``).
Same seed, shape and spacing -> identical image, labels, centrelines and metadata.

Centreline JSON (``Phantom.centerlines``; the file written by :func:`write_case` adds
``case_id`` and ``meta``)::

    {
      "schema": "medseg.synth.centerlines/1",
      "coordinate_system": "LPS", "units": "mm",
      "index_order": "ijk = continuous (x, y, z) voxel index; numpy array[k, j, i]",
      "size": [nx, ny, nz], "spacing": [sx, sy, sz], "origin": [ox, oy, oz], "direction": [9 floats],
      "labels": {"portal_vein": 2, "hepatic_veins": 3, "ivc": 4},
      "trees": {
        "portal_vein" | "hepatic_veins" | "ivc": [
          {"id": int,                    # unique within the tree
           "parent_id": int | null,      # null for a root
           "generation": int,            # 0 = root trunk
           "name": str | null,           # e.g. "main_portal_vein", "right_hepatic_vein"
           "points_mm": [[x, y, z], ...],   # physical LPS mm (SimpleITK physical space)
           "points_ijk": [[i, j, k], ...],  # continuous voxel index of the same points
           "radius_mm": [r, ...]}           # lumen radius at each point
        ]
      }
    }

A child's first point is its parent's last point (the bifurcation). The portal tree has one
root (``main_portal_vein``, partly outside the liver) whose children are the right and left
portal veins (generation 1). ``hepatic_veins`` has exactly three roots (right, middle, left
hepatic vein, generation 0) whose first point lies on the IVC wall. ``ivc`` is one vertical
branch from the bottom of the volume up through the diaphragm. Points are about 0.9 x the
smallest voxel spacing apart. Radii follow Murray's law at bifurcations (r0^3 = r1^3 + r2^3);
the thinnest vessels are about max(1 mm x anatomy scale, 0.45 x smallest spacing).
"""

from medseg_server.labels import LABELS

from .cohort import case_seed, make_cohort, write_case
from .phantom import Phantom, make_phantom
from .variation import Variation, sample_variation

__all__ = ["LABELS", "Phantom", "Variation", "case_seed", "make_cohort", "make_phantom", "sample_variation",
           "write_case"]
