"""The module's copy of the label table equals the server's, and turns into segment specs."""

from __future__ import annotations

from dataclasses import astuple

from medseg_server import labels as server_labels
from MedSegLib import labels


def test_table_equals_the_servers():
    assert [astuple(s) for s in labels.STRUCTURES] == [astuple(s) for s in server_labels.STRUCTURES]


def test_segment_specs_name_colour_and_order():
    specs = labels.segment_specs({"background": 0, "portal_vein": 2, "liver": 1, "aorta": 52})
    assert [s.value for s in specs] == [1, 2, 52]
    assert specs[0].display == "Liver" and specs[0].color == (0.87, 0.51, 0.40)
    assert specs[1].structure.snomed_type == ("32764006", "Portal vein")
    assert specs[2].structure is None and specs[2].display == "Aorta"
    assert [s.value for s in labels.segment_specs(["liver", "tumor"])] == [1, 2]
    assert labels.segment_specs(["liver", "tumor"])[1].structure.name == "tumour"


def test_terminology_entry_has_the_snomed_code():
    entry = labels.terminology_entry(labels.BY_NAME["hepatic_veins"])
    assert entry.count("~") == 6
    assert "SCT^8993003^Hepatic vein" in entry
    assert "SCT^49755003" in labels.terminology_entry(labels.BY_NAME["tumour"])
