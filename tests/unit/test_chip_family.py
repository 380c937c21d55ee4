"""Every chip names its family; the simulator's efficiency comes from it, never a default."""

from __future__ import annotations

import dataclasses

import pytest

from ultracluster.errors import ConfigError
from ultracluster.hardware import CHIPS, get_chip
from ultracluster.hardware.chip import CHIP_FAMILIES
from ultracluster.simulate.calibration import EFFICIENCY, efficiency_for


def test_every_family_has_efficiency_parameters() -> None:
    assert set(CHIP_FAMILIES) == set(EFFICIENCY)
    for chip in CHIPS.values():
        assert efficiency_for(chip) is EFFICIENCY[chip.family]


def test_family_drives_efficiency() -> None:
    # the values are fitted (calibration.json); what the family decides is which ones apply
    assert efficiency_for(get_chip("trn2")) is EFFICIENCY["trainium"]
    assert efficiency_for(get_chip("trn1")) is efficiency_for(get_chip("trn2"))
    assert efficiency_for(get_chip("h100-sxm")) is EFFICIENCY["nvidia-hopper"]


def test_unknown_family_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="family = 'volta'") as e:
        dataclasses.replace(get_chip("h100-sxm"), family="volta")  # type: ignore[arg-type]  # the bad input under test
    assert "\n" not in str(e.value)


def test_family_without_parameters_is_an_error() -> None:
    table = {k: v for k, v in EFFICIENCY.items() if k != "trainium"}
    with pytest.raises(ConfigError, match="trn2: family 'trainium' has no efficiency"):
        efficiency_for(get_chip("trn2"), table)
