"""How the answer writes a candidate with its amount: a candidate the distances made possible but with no atom in
its environments is said to be so, not "~0 atoms [0-0]" of a product (seen on a 10 ps student run: "possible: In2S3
(~0 S atoms [0-0]; ...)")."""

from __future__ import annotations

from types import SimpleNamespace

from cellsim.products.answer import _amount_text


def _c(name: str, atoms: float, lo: float, hi: float, members: tuple[str, ...] = ()) -> SimpleNamespace:
    amount = {"atoms": atoms, "atoms_lo": lo, "atoms_hi": hi, "element": "S", "members": list(members or (name,))}
    return SimpleNamespace(candidate=name, amount=amount)


def test_an_amount_is_written_with_its_interval() -> None:
    assert _amount_text(_c("In2S3", 4, 3, 6)) == "In2S3 (~4 S atoms [3-6])"
    assert _amount_text(_c("In2S3", 4, 3, 6, ("In2S3", "InS"))) == "In2S3 (~4 S atoms [3-6]; environments alike in InS)"


def test_no_atom_in_the_environments_is_not_an_amount_of_zero() -> None:
    got = _amount_text(_c("In2S3", 0, 0, 0, ("In2S3", "InS")))
    assert got == "In2S3 (distances only: no S atom in its environments; environments alike in InS)"
    assert "~0" not in got
    # an interval reaching above zero is an amount, however small
    assert _amount_text(_c("InS", 0, 0, 1)) == "InS (~0 S atoms [0-1])"


def test_a_candidate_without_an_amount_is_its_name() -> None:
    assert _amount_text(SimpleNamespace(candidate="LiCl", amount=None)) == "LiCl"


def test_an_engine_that_failed_outright_leads_the_answer() -> None:
    import numpy as np

    from cellsim.products.answer import _engine_failure_flag

    def res(dev: list[float]) -> SimpleNamespace:
        diag = SimpleNamespace(deviation_times_ps=np.arange(len(dev)) * 0.5, deviation_max_eV_A=np.array(dev))
        return SimpleNamespace(diagnostics=diag)

    got = _engine_failure_flag(res([0.4, 1.2, 5.0, 37.0, 159.0]))  # type: ignore[arg-type]
    assert got == (
        "its engine failed outright from 1.5 ps (a force disputed by 37 eV/A, more than 5): whatever happens after "
        "1.5 ps is not physical"
    )
    assert _engine_failure_flag(res([0.4, 1.2, 5.0])) is None  # type: ignore[arg-type]
    assert _engine_failure_flag(res([])) is None  # type: ignore[arg-type]
    assert _engine_failure_flag(SimpleNamespace(diagnostics=None)) is None  # type: ignore[arg-type]
