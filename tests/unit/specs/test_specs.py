import pytest

from magspect.specs import SpecError, UnknownSpecError, family, get_spec, list_specs, load_spec_file, parse_spec

GOOD = get_spec("def-blk-20x10x5-nicuni")


def test_bundled_specs_cover_every_shape_and_grade():
    specs = list_specs()
    assert {s.part.shape for s in specs} == {"block", "disc", "ring", "arc"}
    assert {s.grade for s in specs} == {"defence", "commercial"}
    for s in specs:
        assert set(s.dimensions) == set(s.family.names)


def test_arc_chord_is_consistent_with_radius_and_angle():
    import math

    s = get_spec("ev-arc-r30-r25-40deg")
    d = s.nominal_mm()
    assert d["chord"] == pytest.approx(2 * d["outer_radius"] * math.sin(math.radians(d["angle_deg"] / 2)), abs=1e-3)
    assert d["thickness"] == pytest.approx(d["outer_radius"] - d["inner_radius"])


def test_unknown_spec_names_the_bundled_ones():
    with pytest.raises(UnknownSpecError, match="def-blk-20x10x5-nicuni"):
        get_spec("nope")


def _yaml_with(old: str, new: str) -> str:
    from importlib import resources

    text = (resources.files("magspect.specs") / "data" / "def-blk-20x10x5-nicuni.yaml").read_text()
    assert old in text
    return text.replace(old, new)


def test_bad_field_names_file_line_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(_yaml_with("width:     {nominal: 10.00, tol: 0.05}", "width:     {nominal: 10.00, tol: -0.05}"))
    with pytest.raises(SpecError) as e:
        load_spec_file(p)
    msg = str(e.value)
    assert str(p) in msg and ":11:" in msg and "dimensions.width" in msg


def test_unknown_key_and_bad_subtype(tmp_path):
    with pytest.raises(SpecError, match=r"field 'decision.guardband'"):
        parse_spec(_yaml_with("guard_band: true", "guardband: true"), "x.yaml")
    with pytest.raises(SpecError, match="unknown subtype 'bubble'"):
        parse_spec(_yaml_with("subtype: blister", "subtype: bubble"), "x.yaml")


def test_missing_dimension_and_wrong_shape():
    with pytest.raises(SpecError, match=r"missing \['chamfer'\]"):
        parse_spec(_yaml_with("  chamfer:   {nominal: 0.20,  tol: 0.10}\n", ""), "x.yaml")
    with pytest.raises(SpecError, match="do not exist for a disc"):
        parse_spec(_yaml_with("shape: block", "shape: disc"), "x.yaml")


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match=r"x.yaml:\d+: not valid YAML"):
        parse_spec("a: [1, 2\nb: 3", "x.yaml")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        parse_spec("- 1\n- 2", "x.yaml")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec_file(tmp_path / "missing.yaml")


def test_family_lookup():
    assert family("ring").dimension("concentricity").kind == "form"
    with pytest.raises(KeyError, match="unknown shape"):
        family("cube")
