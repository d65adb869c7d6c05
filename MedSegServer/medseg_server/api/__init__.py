"""HTTP routers, one per resource of the MONAI Label REST API (plus MedSeg's own)."""
