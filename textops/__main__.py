"""Allow ``python -m textops`` as an alias of the ``textops`` console script."""

from textops.cli import main

raise SystemExit(main())
