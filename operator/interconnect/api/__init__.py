"""The API: the models of the interconnect.dev custom resources, the single source of truth.

The CRDs under ``crds/`` are generated from these models (``python -m interconnect crds``);
a unit test fails when the two drift.
"""
