"""HTTP routes: ``tag`` (POST /v1/tag), ``models``, ``health``, ``metrics``; ``demo`` (GET /)."""
