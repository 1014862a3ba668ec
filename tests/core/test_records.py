"""Records between layers (issue 35): analysis.json and match.json carry a format version that is checked on load
(current read, older known upgraded, anything else refused by name); the analysis record's facts are read through
typed attributes (``AnalysisResult.meta``), never by string key outside cellsim/analysis/; reprs are short."""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import cellsim
from cellsim.analysis.info import AnalysisInfo
from cellsim.analysis.store import FORMAT_VERSION as ANALYSIS_VERSION
from cellsim.analysis.store import AnalysisResult, read_info
from cellsim.core.errors import AnalysisError, CellsimError
from cellsim.core.records import read_versioned
from cellsim.products.result import FORMAT_VERSION as MATCH_VERSION
from cellsim.products.result import MatchError, MatchResult
from cellsim.testing import reaction_run

ROOT = Path(__file__).resolve().parents[2] / "cellsim"
# the layers that hold analysis records (above engines/ and io/, whose ``.info`` is ASE's Atoms.info)
RECORD_READERS = ("products", "reporting", "stages", "workflow", "cli")


def _info_reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String-key reads of an ``.info`` attribute: ``x.info["k"]`` (read), ``x.info.get(...)`` and the like,
    ``x.info.items()``/``keys()``/``values()``, and ``name = x.info`` (an alias read by key further on)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "info"
            and not isinstance(node.ctx, ast.Store | ast.Del)
        ):
            yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "setdefault", "pop", "items", "keys", "values")
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "info"
        ):
            yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "info"
            and all(isinstance(t, ast.Name) for t in node.targets)
        ):
            yield node.lineno, ast.unparse(node)


def test_no_string_key_reads_of_the_analysis_record_outside_analysis() -> None:
    files = [p for layer in RECORD_READERS for p in (ROOT / layer).rglob("*.py")]
    files += [p for p in ROOT.glob("*.py")]
    assert len(files) > 20
    found = [
        f"{p.relative_to(ROOT.parent)}:{line}: {text}"
        for p in files
        for line, text in _info_reads(ast.parse(p.read_text(), str(p)))
    ]
    assert not found, "read the analysis record through AnalysisResult.meta (AnalysisInfo):\n" + "\n".join(found)


def test_the_scan_sees_each_kind_of_read() -> None:
    src = (
        "a = res.info['dt_source']\nb = res.info.get('id')\ninfo = res.info\nres.info['x'] = 1\n"
        "for k, v in res.info.items():\n    pass\nres.meta.id\n"
    )
    assert sorted(line for line, _ in _info_reads(ast.parse(src))) == [1, 2, 3, 5]


def test_analysis_info_round_trips_and_defaults() -> None:
    d = {
        "id": "abc",
        "dt_fs": 2,
        "dt_source": "INCAR",
        "temperature_K": 300,
        "replica": 1,
        "notes": ["one"],
        "segments": [{"path": "/x/XDATCAR", "fmt": "xdatcar", "size": 10, "sha256": "f", "frames": 5}],
        "replica_folders": ["/a", "/b"],
        "frames": 5,  # a manifest key no other layer reads: kept as it is
    }
    info = AnalysisInfo.from_dict(d)
    assert info.dt_fs == 2.0 and info.temperature_K == 300.0 and info.replica == 1
    assert info.notes == ("one",) and info.replica_folders == ("/a", "/b")
    assert info.segments[0].frames == 5 and info.source_names == ["XDATCAR"]
    assert info.extra == {"frames": 5}
    again = info.to_dict()
    assert {k: again[k] for k in d if k != "segments"} == {
        **{k: v for k, v in d.items() if k != "segments"},
        "dt_fs": 2.0,
        "temperature_K": 300.0,
    }
    assert again["segments"][0]["path"] == "/x/XDATCAR"
    assert AnalysisInfo.from_dict(again) == info
    empty = AnalysisInfo.from_dict({})
    assert empty.id is None and empty.notes == () and empty.reactant_phases == {} and empty.replica is None
    with pytest.raises(TypeError, match="notes"):
        AnalysisInfo.from_dict({"notes": "not a list"})


@pytest.mark.parametrize(
    ("doc", "expect"),
    [
        ({"format": "cellsim-thing", "version": 3}, "current"),
        ({"format": "cellsim-thing", "version": 1}, "upgraded"),
        ({"format": "cellsim-thing"}, "upgraded"),  # written before the field: version 1
        (
            {"format": "cellsim-thing", "version": 4},
            r"format 4; this cellsim \(.*\) reads formats 1, 2, 3 \(current 3\)",
        ),
        ({"format": "cellsim-thing", "version": 0}, "format 0;"),
        ({"format": "cellsim-thing", "version": "3"}, "format '3';"),
        ({"format": "cellsim-thing", "version": True}, "format True;"),
        ({"format": "u", "version": 3}, "not a cellsim thing file"),
        ([1, 2], "not a cellsim thing file"),
    ],
)
def test_read_versioned(doc: object, expect: str) -> None:
    ups = {1: lambda d: {**d, "b": 1}, 2: lambda d: {**d, "c": 2}}
    kw = {"tag": "cellsim-thing", "current": 3, "rerun": "do it again", "upgrades": ups, "missing": 1}
    if expect == "current":
        assert read_versioned(Path("f.json"), doc, **kw) is doc  # type: ignore[arg-type]
    elif expect == "upgraded":
        assert read_versioned(Path("f.json"), doc, **kw) == {"format": "cellsim-thing", "version": 3, "b": 1, "c": 2}  # type: ignore[arg-type]
    else:
        with pytest.raises(CellsimError, match=expect) as err:
            read_versioned(Path("f.json"), doc, **kw)  # type: ignore[arg-type]
        assert str(err.value).startswith("f.json: ") and str(err.value).endswith("do it again")


# a real (small) run: analysed and matched once for the tests below


@pytest.fixture(scope="module")
def matched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, AnalysisResult, MatchResult]]:
    tmp = tmp_path_factory.mktemp("records")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CELLSIM_CACHE", str(tmp / "cache"))
        mp.delenv("MP_API_KEY", raising=False)
        run = reaction_run(tmp / "r", n_frames=300, react_at=150)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cellsim.analyze(run)
            m = cellsim.match(run)
        assert res.out_dir is not None
        yield res.out_dir, res, m


def test_reprs_are_short(matched: tuple[Path, AnalysisResult, MatchResult]) -> None:
    folder, res, m = matched
    for obj in (res, AnalysisResult.load(folder), m, MatchResult.load(folder)):
        text = repr(obj)
        assert len(text) < 1000, text
        assert text.startswith(type(obj).__name__ + "(")
    r = repr(AnalysisResult.load(folder))
    assert f"{res.n_frames} frames" in r and "In-S" in r and str(folder) in r
    mr = repr(m)
    assert f"answer {m.answer['kind']}:" in mr and m.answer["sentence"][:60] in mr and "In-S" in mr
    # the typed view agrees with the record it reads
    assert res.meta.id == m.analysis_id and res.meta.run_dir is not None and res.meta.dt_source


def _rewrite(path: Path, **changes: object) -> None:
    doc = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    path.write_text(json.dumps(doc))


@pytest.fixture()
def copy_of(matched: tuple[Path, AnalysisResult, MatchResult], tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(matched[0], tmp_path / "analysis", ignore=shutil.ignore_patterns("replica-*")))


def test_match_json_current_version_round_trips(
    copy_of: Path, matched: tuple[Path, AnalysisResult, MatchResult]
) -> None:
    doc = json.loads((copy_of / "match.json").read_text())
    assert doc["format"] == "cellsim-match" and doc["version"] == MATCH_VERSION and doc["cellsim_version"]
    again = MatchResult.load(copy_of)
    assert again.answer == matched[2].answer and again.analysis_id == matched[2].analysis_id


def test_match_json_of_format_1_is_upgraded(copy_of: Path, matched: tuple[Path, AnalysisResult, MatchResult]) -> None:
    """A match.json written before the version field (format 1), lacking keys added over its life, is read."""
    p = copy_of / "match.json"
    _rewrite(p, version=None, cellsim_version=None, thermo=None, amounts=None, answer=None, electrolyte=None)
    old = MatchResult.load(copy_of)
    assert old.thermo == {} and old.amounts == {} and old.answer == {} and old.electrolyte == {}
    assert [c.verdict for c in old.candidates] == [c.verdict for c in matched[2].candidates]
    _rewrite(p, version=1)
    assert MatchResult.load(copy_of).answer == {}
    # the upgrade's defaults are fresh objects, not shared between loads
    a, b = MatchResult.load(copy_of), MatchResult.load(copy_of)
    a.thermo["x"] = 1
    assert b.thermo == {}


@pytest.mark.parametrize("version", [MATCH_VERSION + 1, 0, "2", None])
def test_match_json_of_another_version_is_refused_by_name(copy_of: Path, version: object) -> None:
    p = copy_of / "match.json"
    _rewrite(p, version=version if version is not None else "removed", cellsim_version="9.1.0")
    if version is None:
        doc = json.loads(p.read_text())
        doc["version"] = None  # present but empty: not the format-1 file that has no field
        p.write_text(json.dumps(doc))
    with pytest.raises(MatchError) as err:
        MatchResult.load(copy_of)
    msg = str(err.value)
    assert msg.startswith(f"{p}: written by cellsim 9.1.0 in match format {version!r}")
    assert f"current {MATCH_VERSION}" in msg and "run `cellsim match` again" in msg


def test_match_json_missing_a_key_is_refused_not_a_keyerror(copy_of: Path) -> None:
    p = copy_of / "match.json"
    _rewrite(p, rows=None)
    with pytest.raises(MatchError, match=r"match\.json: damaged \(no 'rows'\)"):
        MatchResult.load(copy_of)
    _rewrite(p, format="something-else")
    with pytest.raises(MatchError, match="not a cellsim match file"):
        MatchResult.load(copy_of)


def test_analysis_json_versions(copy_of: Path) -> None:
    """Current read; older (1, never written), newer, missing and malformed refused naming file, found, expected."""
    man = copy_of / "analysis.json"
    assert json.loads(man.read_text())["version"] == ANALYSIS_VERSION
    assert read_info(copy_of).id == AnalysisResult.load(copy_of).meta.id
    for version, found in ((ANALYSIS_VERSION - 1, "1"), (ANALYSIS_VERSION + 1, "3"), (None, "(none)")):
        _rewrite(man, version=version)
        for load in (AnalysisResult.load, read_info):
            with pytest.raises(AnalysisError) as err:
                load(copy_of)
            msg = str(err.value)
            assert msg.startswith(f"{man}: written by cellsim ") and f"in analysis format {found};" in msg
            assert f"reads format {ANALYSIS_VERSION};" in msg and msg.endswith("re-run `cellsim analyze`")


def test_analysis_json_missing_a_key_is_refused_not_a_keyerror(copy_of: Path) -> None:
    man = copy_of / "analysis.json"
    _rewrite(man, frames=None)
    with pytest.raises(AnalysisError, match=r"damaged analysis files \(no 'frames'\)"):
        AnalysisResult.load(copy_of)
    _rewrite(man, frames=5, notes="a string, not a list")
    with pytest.raises(AnalysisError, match=r"damaged analysis files .*notes"):
        AnalysisResult.load(copy_of)


def test_a_loaded_analysis_saved_again_writes_the_current_version(copy_of: Path, tmp_path: Path) -> None:
    res = AnalysisResult.load(copy_of)
    assert "version" not in res.info and "format" not in res.info
    res.save(tmp_path / "again")
    doc = json.loads((tmp_path / "again" / "analysis.json").read_text())
    assert doc["version"] == ANALYSIS_VERSION and doc["format"] == "cellsim-analysis"
