"""`python -m realtime` runs the command line."""

from .cli import main

main()
