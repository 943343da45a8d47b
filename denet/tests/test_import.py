"""The package installs beside the shared package (and GALIP's process plumbing) and declares its status."""

import common
import denet
import galip


def test_package_imports_beside_common_and_galip():
    assert denet.__version__ and common.__version__ and galip.__version__
    assert denet.IMPLEMENTED is True
