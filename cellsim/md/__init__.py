"""Stage 2-3: molecular dynamics. VASP inputs (planned) and engines: the embedded MLIP engine."""
