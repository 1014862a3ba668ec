"""vasprun.xml, streamed: the per-atom species, the INCAR tags and the frames (one ionic step's <structure> at a
time, memory of one block)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from cellsim.io.formats import BLOCK_FRAMES, SourceHeader
from cellsim.io.xdatcar import FrameBlock, TrajectoryError


def _floats(text: str | None, path: Path, what: str) -> list[float]:
    try:
        vals = [float(x) for x in (text or "").split()]
    except ValueError:
        raise TrajectoryError(f"{path}: {what}: expected numbers, got {text!r}") from None
    if not all(np.isfinite(vals)):
        raise TrajectoryError(f"{path}: {what}: non-finite number in {text!r}")
    return vals


def vasprun_species(path: Path) -> list[str]:
    """Per-atom element symbols from vasprun.xml's <atominfo> (read up to it, not the whole file)."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import open_maybe_compressed

    with open_maybe_compressed(path) as fh:
        try:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "array" and elem.get("name") == "atoms":
                    return [rc.findall("c")[0].text.strip() for rc in elem.iter("rc")]
        except ET.ParseError as exc:
            raise TrajectoryError(f"{path}: not valid XML before <atominfo>: {exc}") from None
    raise TrajectoryError(f"{path}: no <atominfo><array name='atoms'> found: not a vasprun.xml?")


def vasprun_incar(path: Path) -> dict[str, str]:
    """The <incar> tags of a vasprun.xml (the first element of the file)."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import open_maybe_compressed

    tags: dict[str, str] = {}
    with open_maybe_compressed(path) as fh:
        try:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "incar":
                    for item in elem.iter("i"):
                        tags[str(item.get("name", "")).upper()] = (item.text or "").strip()
                    return tags
                if elem.tag in ("atominfo", "calculation"):
                    break
        except ET.ParseError:
            return tags
    return tags


def _vasprun_blocks(path: Path) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """Frames of a vasprun.xml, streamed: one ionic step's <structure> at a time, memory of one block."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, open_maybe_compressed

    species = vasprun_species(path)
    hdr = SourceHeader(path, species, "vasprun")
    n = len(species)
    frac_buf: list[np.ndarray] = []
    cell_buf: list[np.ndarray] = []
    start = 0
    depth_calc = 0
    with open_maybe_compressed(path) as fh:
        it = ET.iterparse(fh, events=("start", "end"))
        try:
            for event, elem in it:
                if elem.tag == "calculation":
                    depth_calc += 1 if event == "start" else -1
                    if event == "end":
                        elem.clear()
                    continue
                if event != "end" or elem.tag != "structure" or depth_calc <= 0:
                    continue
                basis = elem.find("crystal/varray[@name='basis']")
                pos = elem.find("varray[@name='positions']")
                if basis is None or pos is None:
                    raise TrajectoryError(
                        f"{path}: ionic step {start + len(frac_buf) + 1}: <structure> without basis/positions"
                    )
                cell = np.array([_floats(v.text, path, "basis") for v in basis.findall("v")])
                frac = np.array([_floats(v.text, path, "positions") for v in pos.findall("v")])
                if cell.shape != (3, 3) or frac.shape != (n, 3):
                    raise TrajectoryError(
                        f"{path}: ionic step {start + len(frac_buf) + 1}: expected a 3x3 basis and {n} positions, "
                        f"got {cell.shape} and {frac.shape}"
                    )
                frac_buf.append(frac % 1.0)
                cell_buf.append(cell)
                elem.clear()
                if len(frac_buf) == BLOCK_FRAMES:
                    yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)
                    start += len(frac_buf)
                    frac_buf, cell_buf = [], []
        except ET.ParseError as exc:
            # a run still going or killed: its vasprun.xml ends mid-file
            warnings.warn(
                f"{path}: XML ends or breaks at {exc.position}: read {start + len(frac_buf)} whole ionic steps",
                TruncatedTrajectoryWarning,
                stacklevel=2,
            )
        except (OSError, EOFError) as exc:
            warnings.warn(
                f"{path}: corrupt compressed data after {start + len(frac_buf)} whole ionic steps ({exc})",
                TruncatedTrajectoryWarning,
                stacklevel=2,
            )
    if frac_buf:
        yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)


def vasprun_reader(
    path: Path, species: list[str] | None = None, on_digest: Callable[[str], None] | None = None
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """The registry's reader (:mod:`cellsim.io.registry`): every block of ``path``; the species come from the file
    itself and the digest is taken by the caller."""
    return _vasprun_blocks(path)
