"""The functional core: pure, synchronous, no I/O. Safe to import anywhere."""
