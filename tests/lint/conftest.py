from __future__ import annotations

from pathlib import Path

import pytest
from lint_support import write_model


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("lint_model"))
