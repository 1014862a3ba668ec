"""The ``cellsim`` command line: parse, call a stage of :mod:`cellsim.stages`, print.

Commands live in one module per stage group; heavy modules are imported inside the command that needs
them, so ``cellsim --help`` starts fast. :func:`main` is the entry point: it turns any failure into one line
and a non-zero exit status (a traceback goes to a log file, or to the terminal with ``--debug``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from cellsim.cli import analysis as _analysis  # noqa: F401  (registers the commands)
from cellsim.cli import build as _build  # noqa: F401
from cellsim.cli import cluster as _cluster  # noqa: F401
from cellsim.cli import compare as _compare  # noqa: F401
from cellsim.cli import demo as _demo  # noqa: F401
from cellsim.cli import engines as _engines  # noqa: F401
from cellsim.cli import fit as _fit  # noqa: F401
from cellsim.cli import learn as _learn  # noqa: F401
from cellsim.cli import md as _md  # noqa: F401
from cellsim.cli._app import app, err_console

__all__ = ["app", "console_main", "main"]

# options that may be given more than once (their values are merged); any other repeated option is refused
REPEATABLE = {"--pairs", "--cutoff", "--candidate", "--engine", "--labels", "--control"}


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


def _click_modules() -> list[ModuleType]:
    """The click that typer parses with (typer >= 0.20 carries its own as ``typer._click``; older typer uses the
    click package), and the click package too when something has imported it: usage errors are caught
    whichever raises."""
    import importlib

    import typer.main

    mods: list[ModuleType] = []
    for name in ("_click", "click"):
        mod = getattr(typer.main, name, None)
        if isinstance(mod, ModuleType):
            mods.append(mod)
    # the click package only when imported (typer >= 0.20 never imports it, and importing it would cost every
    # command 7 ms); this runs when an exception is being matched, so a click imported by the command counts
    if isinstance(sys.modules.get("click"), ModuleType):
        mods.append(sys.modules["click"])
    return [importlib.import_module(m.__name__ + ".exceptions") for m in dict.fromkeys(mods)]


def _classes(name: str, *extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """Exception classes called ``name`` in every click of :func:`_click_modules`, plus ``extra``."""
    mods = _click_modules()
    return tuple(dict.fromkeys([*(getattr(m, name) for m in mods if hasattr(m, name)), *extra]))


def _app_for(args: list[str]) -> Any:
    """The application that parses ``args``: when they start with the name of a top-level command or group, the
    root with that one alone (same callback, options and help), else the whole app (``--help``, ``--version``,
    completion, a mistyped name that wants its "did you mean"). typer builds the click command of every
    registered command before parsing: 16-19 ms for cellsim's fifteen on every call, 2.5 ms for one."""
    import typer.main

    if not args or args[0].startswith("-"):
        return app

    def name(c: Any) -> str:
        return c.name or typer.main.get_command_name(getattr(c.callback, "__name__", ""))

    cmds = [c for c in app.registered_commands if name(c) == args[0]]
    groups = [g for g in app.registered_groups if g.name == args[0]]
    if len(cmds) + len(groups) != 1:
        return app
    one = typer.Typer()
    one.info = app.info
    one.registered_callback = app.registered_callback
    one.registered_commands = cmds
    one.registered_groups = groups
    return one


def _command_path(args: list[str]) -> str:
    """``cellsim refs show`` for args naming those (sub)commands: for errors raised without a context."""
    import typer.main

    cmd: Any = typer.main.get_command(app)
    path = ["cellsim"]
    for a in args:
        sub = getattr(cmd, "commands", {}).get(a)
        if sub is None:
            if not a.startswith("-"):
                break
            continue
        cmd = sub
        path.append(a)
    return " ".join(path)


def usage_line(exc: BaseException, args: list[str] | None = None) -> str:
    """One line for a click usage error: the command, what is wrong, the closest name, where help is.

    ``cellsim analyze --windw 1`` -> ``cellsim analyze: no such option --windw; did you mean --window?
    (see cellsim analyze --help)``.
    """
    import difflib

    ctx = getattr(exc, "ctx", None)
    cmd = ctx.command_path if ctx is not None else _command_path(args or [])
    kind = type(exc).__name__
    if kind == "NoSuchOption":
        opt = str(getattr(exc, "option_name", ""))
        near = list(getattr(exc, "possibilities", None) or [])
        if not near and ctx is not None:
            names = [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
            near = difflib.get_close_matches(opt, names, n=2)
        msg = f"no such option {opt}" + (f"; did you mean {' or '.join(near[:2])}?" if near else "")
    else:
        text = " ".join(exc.format_message().split()) if hasattr(exc, "format_message") else str(exc)
        text = text.replace(". Did you mean", "; did you mean").rstrip(".")
        if text[:2].istitle():  # click's sentences start with a capital: "Missing argument 'targets'"
            text = text[0].lower() + text[1:]
        param = getattr(exc, "param", None)
        if kind == "MissingParameter" and param is not None and getattr(param, "help", None):
            text += f" ({param.help})"
        msg = text
    return f"{cmd}: {msg} (see {cmd} --help)"


def console_main() -> None:
    """The ``cellsim`` console script and ``python -m cellsim.cli``: :func:`main` in a process that ends with it.

    At exit Python runs full garbage collections over every object still alive, most of them made by the imports
    (~42,000 after an analysis: pydantic's, typer's, numpy's): 50-100 ms of every command on this 2-core machine
    (a 10-frame `cellsim analyze` 0.66 -> 0.61 s, paired). Here the objects left are frozen first (atexit), so
    those collections skip them; what they would finalize are objects in reference cycles, and the command's
    own outputs are written atomically and closed before it returns. Only the console entry does this: a program
    that calls :func:`main` itself keeps its own shutdown as it was.
    """
    import atexit
    import gc

    atexit.register(gc.freeze)
    main()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 on success, 2 on a refused input or a usage error, 1 on an unexpected failure, 130 on
    Ctrl-C."""
    # cellsim uses no pydantic plugins, and looking for them reads the entry points of every installed package:
    # 40-60 ms of every command in an environment with torch, pymatgen and ASE (measured on `cellsim analyze`).
    # setdefault: an environment that sets the variable (empty: look for plugins) keeps its choice.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    import typer

    from cellsim.core.errors import CellsimError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CELLSIM_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    rep = _repeated(args)
    if rep is not None:
        err_console.print(f"error: {rep} given more than once; give it once", highlight=False, markup=False)
        sys.exit(2)
    try:
        rv = _app_for(args)(args=args, prog_name="cellsim", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    # the classes are looked up only when something was raised (an except clause is evaluated then)
    except _classes("Exit", typer.Exit) as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except _classes("UsageError") as exc:
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            err_console.print(f"error: {usage_line(exc, args)}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except _classes("ClickException") as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 1))
    except _classes("Abort", typer.Abort):
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
