"""``python -m interconnect``: the command line lives in `interconnect.cli.main`."""

from interconnect.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
