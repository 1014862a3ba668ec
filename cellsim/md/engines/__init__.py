"""MD engines. ``mlip``: ASE molecular dynamics on an embedded machine-learned potential (CHGNet, SevenNet)."""
