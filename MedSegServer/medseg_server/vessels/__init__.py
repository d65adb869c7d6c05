"""Liver vessels: enhancement, mask refinement, portal/hepatic separation, centreline trees.

- ``vesselness(image, region)``, ``refine_vessel_mask(image, rough, liver, foreground, background)``
- ``auto_seeds``, ``separate_trees``, ``reassign_branch`` (click to move a branch to the other tree)
- ``extract_centerlines(mask, grid, name, root_score)`` -> ``VesselTree`` (branches, bifurcations,
  generations, lengths, radius per point)
"""

from .centerline import CenterlineParams, extract_centerlines
from .enhance import refine_vessel_mask, vesselness
from .graph import Branch, VesselTree
from .grid import Grid, VesselError
from .separate import HEPATIC, PORTAL, Seeds, auto_seeds, reassign_branch, separate_trees

__all__ = ["HEPATIC", "PORTAL", "Branch", "CenterlineParams", "Grid", "Seeds", "VesselError", "VesselTree",
           "auto_seeds", "extract_centerlines", "reassign_branch", "refine_vessel_mask", "separate_trees",
           "vesselness"]
