"""The Typer application, its consoles and the one-line failure path shared by every command."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console, ConsoleDimensions

from cellsim.core.errors import CellsimError

# the width of output that goes to a file or a pipe: wide enough that no table is wrapped and no line split
PIPE_WIDTH = 10_000


class _Console(Console):
    """A rich Console that does not wrap when its output is not a terminal.

    rich lays out for the width of whichever standard stream is a terminal (or 80 columns), so a piped
    ``cellsim analyze | tee log`` would wrap tables and split numbers across lines; a file or pipe has no
    width, so lines stay whole. ``COLUMNS`` still sets a width when given.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


app = typer.Typer(
    name="cellsim",
    help="AIMD studies of reactions at solid-electrolyte/metal interfaces (build -> inputs -> run -> "
    "analyze -> match -> report).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
refs_app = typer.Typer(help="The offline reference library of crystal structures.", no_args_is_help=True)
app.add_typer(refs_app, name="refs")

# emoji and highlighting off: ":name:" in a path or a message stays as written, and rich does not colour the
# digits of formulas, paths and pair names as if they were Python values (its highlighter's regular expressions
# and emoji table are then never loaded either); tables and [ok]/[WARN] keep their own styles
console = _Console(emoji=False, highlight=False)
err_console = _Console(stderr=True, emoji=False, highlight=False)


def _print_version(value: bool) -> None:
    if value:
        from cellsim.core.version import __version__

        console.print(f"cellsim {__version__}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print cellsim's version and exit."),
    ] = False,
) -> None:
    """AIMD studies of reactions at solid-electrolyte/metal interfaces (build -> inputs -> run -> analyze -> match
    -> report)."""


def fail(exc: CellsimError | str, code: int = 2) -> NoReturn:
    """Print one line naming what is wrong and exit non-zero."""
    from rich.text import Text

    err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
    raise typer.Exit(code=code)
