"""cellsim: AIMD studies of reactions at solid-electrolyte/metal interfaces.

Stages (one sub-package or module each, mirroring the run directory):
``study`` -> ``build`` -> ``md`` (inputs, engines) -> ``analysis`` -> ``match`` -> ``report``.
"""

__version__ = "0.1.0"
