"""`python -m dagflow.cli`: the `dagflow` command."""

from dagflow.cli import main

if __name__ == "__main__":
    main()
