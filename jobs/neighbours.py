"""spark-submit entry point of the `neighbours` job (README.md); all logic lives in moviegraph."""

import sys

from moviegraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["neighbours", *sys.argv[1:]]))
