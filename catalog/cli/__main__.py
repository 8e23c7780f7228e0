"""python -m catalog.cli: the same as the `catalog` console script."""

from ..entry import main

main()
