"""The public surface stays what __all__ says (httpx's test_exported_members), and stays torch-free."""

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["magspect", "magspect.inspect", "magspect.specs", "magspect.datasets"])
def test_all_names_exist(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which does not exist"
    assert sorted(mod.__all__) == sorted(set(mod.__all__))


def test_runtime_packages_do_not_import_torch():
    code = "import sys, magspect, magspect.inspect, magspect.specs, magspect.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
