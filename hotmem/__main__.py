"""``python -m hotmem``: the command line of hotmem.cli."""
from hotmem.cli import main

raise SystemExit(main())
