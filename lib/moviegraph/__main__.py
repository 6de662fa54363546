"""``python -m moviegraph <job> ...``: the same jobs as spark-submit.sh, in-process."""

from moviegraph.cli import main

raise SystemExit(main())
