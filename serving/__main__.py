"""`python -m serving`: the same as `gradio-serve` (serving.cli:main)."""

import sys

from serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
