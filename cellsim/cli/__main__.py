"""``python -m cellsim.cli``: the same as the ``cellsim`` command."""

from cellsim.cli import console_main

console_main()
