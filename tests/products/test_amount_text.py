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
