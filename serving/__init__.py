"""The HTTP tagging service: FastAPI app (``serving.main.create_app``) and ``ner serve``."""
