"""``python -m serving ...`` is ``ner serve ...``."""

from serving.cli import main

raise SystemExit(main())
