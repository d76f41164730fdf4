"""``python -m desktop`` and the PyInstaller bundle's entry script: start the Malbeot window."""

import sys

from desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
