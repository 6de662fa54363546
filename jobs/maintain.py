"""spark-submit entry point of the `maintain` job (see README.md); all logic lives in moviegraph."""

import sys

from moviegraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
