"""The Typer application, its consoles and the one-line failure path shared by every command."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from cellsim.errors import CellsimError

app = typer.Typer(
    name="cellsim",
    help="AIMD studies of reactions at solid-electrolyte/metal interfaces (build -> inputs -> run -> "
    "analyze -> match -> report).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
refs_app = typer.Typer(help="The offline reference library of crystal structures.", no_args_is_help=True)
app.add_typer(refs_app, name="refs")

console = Console()
err_console = Console(stderr=True)


def fail(exc: CellsimError | str, code: int = 2) -> NoReturn:
    """Print one line naming what is wrong and exit non-zero."""
    from rich.text import Text

    err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
    raise typer.Exit(code=code)
