"""`python -m eventpipe_transform ...`: see cli.py."""

from eventpipe_transform.cli import main

raise SystemExit(main())
