import sys

from mnist_kit.cli import main

sys.exit(main())
