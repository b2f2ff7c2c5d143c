"""`python -m launcher`: the same as `gradio-serve-launcher` (launcher.app:main)."""

import sys

from launcher.app import main

if __name__ == "__main__":
    sys.exit(main())
