"""magspect.edge's public surface is what __all__ says."""

import magspect.edge


def test_all_names_exist():
    for name in magspect.edge.__all__:
        assert hasattr(magspect.edge, name), name
    assert sorted(magspect.edge.__all__) == sorted(set(magspect.edge.__all__))


def test_module_docstring_example_runs():
    import doctest

    res = doctest.testmod(magspect.edge, verbose=False)
    assert res.attempted >= 4 and res.failed == 0
