"""`python -m dagflow ...`: the `dagflow` command."""

from dagflow.cli import main

if __name__ == "__main__":
    main(prog_name="dagflow")
