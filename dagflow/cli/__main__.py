"""`python -m dagflow.cli`: the `dagflow` command."""

from dagflow.cli import main

main()
