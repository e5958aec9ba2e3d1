"""Generated files: the CRDs, the Grafana dashboards and the alert rules, from the API models and
the operator's metrics (``python -m interconnect crds|dashboards|alerts``). Uses only ``api`` and
``core``; nothing in the operator imports it."""
