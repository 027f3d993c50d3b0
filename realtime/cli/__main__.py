"""`python -m realtime.cli ...` (what the GUI's training job and torchrun use): the `twostream` command."""

from . import main

raise SystemExit(main())
