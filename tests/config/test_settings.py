"""Machine settings: a value written in the config file or the environment is used as written, zero included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cellsim.config.settings import load_settings
from cellsim.core.errors import CellsimError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in os.environ:
        if key.startswith("CELLSIM_"):
            monkeypatch.delenv(key)
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("CELLSIM_CONFIG", str(path))
    return path


def test_defaults_without_a_config_file(config: Path) -> None:
    s = load_settings()
    assert s.walltime_margin_s == 300.0 and s.custodian_polling_s == 10.0 and s.walltime_s is None
    assert s.vasp_cmd == ("vasp_std",) and s.mpi_launcher == ()


def test_zero_margin_in_the_file_stays_zero(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text("walltime_margin_s: 0\n")
    assert load_settings().walltime_margin_s == 0.0
    monkeypatch.setenv("CELLSIM_WALLTIME_MARGIN_S", "0")
    config.write_text("walltime_margin_s: 600\n")
    assert load_settings().walltime_margin_s == 0.0  # the environment wins, also with 0


def test_zero_where_zero_means_nothing_is_an_error(config: Path) -> None:
    """A zero polling interval or walltime is refused by name, never replaced by a default."""
    config.write_text("custodian_polling_s: 0\n")
    with pytest.raises(CellsimError, match=r"custodian_polling_s: expected a number of seconds above 0, got 0"):
        load_settings()
    config.write_text("walltime_s: 0\n")
    with pytest.raises(CellsimError, match=r"walltime_s: expected a number of seconds above 0, got 0"):
        load_settings()
    config.write_text("walltime_s: 3600\nwalltime_margin_s: -1\n")
    with pytest.raises(CellsimError, match=r"walltime_margin_s: expected a number of seconds >= 0, got -1"):
        load_settings()


def test_null_in_the_file_means_the_default(config: Path) -> None:
    config.write_text("walltime_margin_s: null\nvasp_cmd: null\nwalltime_s: 7200\n")
    s = load_settings()
    assert s.walltime_margin_s == 300.0 and s.vasp_cmd == ("vasp_std",) and s.walltime_s == 7200.0
