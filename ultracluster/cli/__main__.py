"""``python -m ultracluster.cli``: the same as the ``ultracluster`` command."""

from ultracluster.cli import main

raise SystemExit(main())
