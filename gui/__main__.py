"""`python -m gui [SOURCE]`: the same as `twostream gui [SOURCE]`."""

from realtime import main

if __name__ == "__main__":
    import sys

    raise SystemExit(main(["gui", *sys.argv[1:]]))
