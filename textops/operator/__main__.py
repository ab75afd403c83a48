"""``python -m textops.operator``: see :mod:`textops.operator.main`."""

from textops.operator.main import main

main()
