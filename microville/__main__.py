"""`python -m microville`: the `microville` command."""

from cli.main import main

main()
