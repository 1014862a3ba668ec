"""Stage 1: build a solid-electrolyte/metal slab interface (``cellsim build``)."""

from cellsim.build.interface import InterfaceModel, build_interface, write_interface

__all__ = ["InterfaceModel", "build_interface", "write_interface"]
