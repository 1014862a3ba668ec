"""Replicas (issue 14): the analysis pools them, matching counts their verdicts, the report shows the spread."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import cellsim
from cellsim.testing import replica_run


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)


def test_replicas_with_known_differences(tmp_path: Path) -> None:
    run = replica_run(tmp_path / "run", [200, 300, None])  # bonds form at frame 200, 300, never
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = cellsim.analyze(run)
        result = cellsim.match(run)
        paths = cellsim.report(run)
    assert pooled.replicas == 3 and (run / "analysis" / "replica-02" / "analysis.json").is_file()
    # bond counts: the pooled series is the replica mean; the spread is kept per replica
    rb = pooled.replica_bonds["In-S"]
    assert rb.shape == (3, 600)
    np.testing.assert_allclose(pooled.bonds["In-S"], rb.mean(axis=0))
    assert rb[0, 250] == 16 and rb[1, 250] == 0 and rb[2, -1] == 0
    # formation times: one per replica, None where nothing formed
    ev = pooled.info["replica_events"]["In-S"]["formation_ps"]
    assert ev[0] == pytest.approx(0.402, abs=0.004) and ev[1] == pytest.approx(0.602, abs=0.004) and ev[2] is None
    # verdicts: the replicas that reacted support InCl, the one that did not does not
    incl = result.replicas["InCl"]
    assert incl["n"] == 3 and incl["formed"] == 2 and incl["not seen"] == 1
    saved = json.loads((run / "analysis" / "match.json").read_text())
    assert saved["replicas"]["InCl"]["formed"] == 2
    html = paths["html"].read_text()
    assert "Replicas (3)" in html and "formed in 2 of 3" in html
    # re-analysing keeps the replicas' folders inside the pooled one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
    assert (run / "analysis" / "replica-00" / "rdf.npz").is_file()
