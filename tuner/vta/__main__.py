import sys

from tuner.vta.cli import main

sys.exit(main(sys.argv[1:]))
