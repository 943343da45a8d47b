"""The package installs beside the shared package alone (no other paper) and declares its status."""

import common
import denet


def test_package_imports_beside_common():
    assert denet.__version__ and common.__version__
    assert denet.IMPLEMENTED is True
