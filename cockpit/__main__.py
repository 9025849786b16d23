"""``python -m cockpit`` (also what ``torchrun -m cockpit`` starts)."""

from cockpit.cli import main

raise SystemExit(main())
