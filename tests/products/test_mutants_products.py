"""Unit tests that kill the mutants `make mutate` left alive in products/amounts.py (groups, sites, amounts).

Each test pins one rule at the edge a surviving mutant moved; docs/mutation.md lists every survivor with the test that
kills it or the argument that it is equivalent.
"""
