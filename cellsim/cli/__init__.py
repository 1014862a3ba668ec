"""The ``cellsim`` command line: parse, call a stage of :mod:`cellsim.stages`, print.

Commands live in one module per stage group; heavy modules are imported inside the command that needs
them, so ``cellsim --help`` starts fast. :func:`main` is the entry point: it turns any failure into one line
and a non-zero exit status (a traceback goes to a log file, or to the terminal with ``--debug``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cellsim.cli import analysis as _analysis  # noqa: F401  (registers the commands)
from cellsim.cli import build as _build  # noqa: F401
from cellsim.cli import cluster as _cluster  # noqa: F401
from cellsim.cli import demo as _demo  # noqa: F401
from cellsim.cli import engines as _engines  # noqa: F401
from cellsim.cli import md as _md  # noqa: F401
from cellsim.cli._app import app, err_console

__all__ = ["app", "main"]

# options that may be given more than once (their values are merged); any other repeated option is refused
REPEATABLE = {"--pairs", "--cutoff", "--candidate", "--engine"}


def _log_dir() -> Path:
    return Path(os.environ.get("CELLSIM_CACHE", Path.home() / ".cache" / "cellsim")) / "logs"


def _repeated(args: list[str]) -> str | None:
    seen: set[str] = set()
    for a in args:
        if a == "--":
            break
        if not a.startswith("--"):
            continue
        name = a.split("=", 1)[0]
        if name in seen and name not in REPEATABLE:
            return name
        seen.add(name)
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 on success, 2 on a refused input, 1 on an unexpected failure, 130 on Ctrl-C."""
    import click

    from cellsim.errors import CellsimError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CELLSIM_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    rep = _repeated(args)
    if rep is not None:
        err_console.print(f"error: {rep} given more than once; give it once", highlight=False, markup=False)
        sys.exit(2)
    try:
        rv = app(args=args, prog_name="cellsim", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted: run the same command again to continue", markup=False)
        sys.exit(130)
    except CellsimError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        if debug:
            raise
        import time
        import traceback

        log = _log_dir() / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"cellsim {' '.join(args)}\n\n{traceback.format_exc()}")
            where = f"traceback in {log}"
        except OSError:
            where = "run again with --debug for the traceback"
        first = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            f"error: unexpected {type(exc).__name__}: {first} ({where}; please report it)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)
