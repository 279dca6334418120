import importlib

import pytest


@pytest.mark.parametrize("name", ["magspect.serve", "magspect.store"])
def test_all_is_exactly_the_public_names(name):
    mod = importlib.import_module(name)
    public = {n for n in vars(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), type(mod))}
    assert set(mod.__all__) == public
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
