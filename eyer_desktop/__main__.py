import sys

from eyer_desktop.cli import main

sys.exit(main())
