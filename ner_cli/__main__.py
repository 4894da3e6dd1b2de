"""``python -m ner_cli ARGS`` == ``ner ARGS``."""

import sys

from ner_cli import main

sys.exit(main())
