"""The report: figures, a self-contained HTML file checked in a real headless Chromium, and Markdown."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cellsim.stages import analyze as run_analyze
from cellsim.stages import match as run_match
from cellsim.stages import report as make_report
from cellsim.testing import reaction_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = reaction_run(tmp_path_factory.mktemp("rep") / "run", n_frames=400, react_at=200)
    run_analyze(run, window_ps=0.1)
    run_match(run, use_mp=False)
    make_report(run)
    return run


def test_report_files(reported: Path) -> None:
    rep = reported / "report"
    for name in (
        "rdf_InS.png",
        "rdf_InCl.png",
        "match_InS.png",
        "match_InCl.png",
        "bonds.png",
        "report.html",
        "report.md",
    ):
        assert (rep / name).is_file() and (rep / name).stat().st_size > 1000, name
    html = (rep / "report.html").read_text()
    # self-contained: every image is embedded, nothing is fetched from elsewhere
    srcs = re.findall(r"""src=['"]([^'"]+)['"]""", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"""(href|src)=['"](https?:|//)""", html)
    for text in ("Answer", "Bonds and RDF peaks", "Candidate products", "InCl", "formed from", "Local environments"):
        assert text in html
    # the answer opens the report: products formed, with their score and interval
    assert html.index("<h2>Answer</h2>") < html.index("<h2>Candidate products</h2>")
    assert re.search(r"products formed</td><td>[^<]*InCl \(Cmcm\) \d\.\d\d \[\d\.\d\d-\d\.\d\d\]", html)
    md = (rep / "report.md").read_text()
    for name in ("rdf_InS.png", "bonds.png", "match_InCl.png"):
        assert f"]({name})" in md
    assert re.search(r"\| InCl \| InCl \| Cmcm \| formed \| In-Cl \|", md)


@pytest.mark.slow
def test_report_in_headless_chromium(reported: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get when run as root)")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on(
            "console",
            lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]}"))
        page.goto((reported / "report" / "report.html").as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        title = page.title()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert title.startswith("cellsim report")
    assert len(images) >= 5
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert not broken, broken
    assert not problems, problems


def test_report_states_the_dft_force_check_or_its_absence(reported: Path, tmp_path: Path) -> None:
    """The answer's trust rows name the engines' forces vs PBE when `engines check --reference cp2k` made
    them (here the stored parity of the reduced Li6PS5Cl/In interface), and say how to get them when not."""
    md = (reported / "report" / "report.md").read_text()
    assert "No DFT check of the forces on this interface" in md and "--reference cp2k" in md
    run = tmp_path / "run"
    shutil.copytree(reported, run)
    stored = Path(__file__).resolve().parents[2] / "data" / "pbe" / "li6ps5cl_in_parity" / "parity.json"
    shutil.copy(stored, run / "engine-parity.json")
    make_report(run)
    md = (run / "report" / "report.md").read_text()
    assert "No DFT check" not in md
    assert re.search(r"forces on this interface vs .*PBE.*MAE \d\.\d\d eV/A \(.*In \d\.\d\d", md), md[:3000]
