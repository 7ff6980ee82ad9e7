"""Certificates for the security tests, made once per session with openssl (nothing secret committed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.testing.certs import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))
