"""The command lines: ``python -m interconnect`` (run, join, leave, usage, crds, ...) and the
``kubectl compute`` plugin. Commands call functions; nothing in the operator imports this package."""
