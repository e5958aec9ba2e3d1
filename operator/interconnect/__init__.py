"""Compute Interconnect: dispatch GPU jobs across member clusters by latency tier and price.

The public surface is small: the API models (``interconnect.api``), the pure core
(``interconnect.core``) and the command line (``python -m interconnect``). Everything else is
the operator's imperative shell and may change without notice.
"""

__version__ = "0.1.0"
