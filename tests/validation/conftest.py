"""One validation of the shipped measurements for every test that needs it (about 5 s)."""

from __future__ import annotations

import pytest

from ultracluster.simulate.validate import Validation, validate_full


@pytest.fixture(scope="session")
def validation() -> Validation:
    return validate_full()
