"""toxfile.py hands uv the package sources pip would use, with pip's precedence."""

from __future__ import annotations

import toxfile

LISTING = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/ignored/by/the/env/value'
install.index_url='https://mirror.example/simple'
global.index-url='https://overridden.example/simple'
"""


def test_environment_beats_install_section_beats_global():
    options = toxfile.pip_options(LISTING)
    assert options["find-links"] == "/opt/wheels"
    assert options["index-url"] == "https://mirror.example/simple"
    assert options["constraint"] == "/etc/xdg/pip/constraints.txt"


def test_sources_map_to_uv_variables_with_uv_separators():
    env = toxfile.uv_environment(toxfile.pip_options(LISTING))
    assert env == {
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "UV_FIND_LINKS": "/opt/wheels",
        "UV_CONSTRAINT": "/etc/xdg/pip/constraints.txt",
        "UV_EXTRA_INDEX_URL": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        "UV_DEFAULT_INDEX": "https://mirror.example/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
    }
    several = toxfile.uv_environment({"find-links": "/a\n/b", "no-index": "true"})
    assert several == {"UV_FIND_LINKS": "/a,/b", "UV_NO_INDEX": "1", "UV_INDEX_STRATEGY": "unsafe-best-match"}


def test_plain_machine_keeps_uv_defaults():
    assert toxfile.uv_environment(toxfile.pip_options("")) == {}
