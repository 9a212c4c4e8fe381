"""Local development stand-ins for outside services (not part of the installed package).

Each tool runs as its own process with ``.venv/bin/python -m devtools.<tool>``, listens on
127.0.0.1 only and keeps its state in its own directory under ``$CARTGUARD_DATA_DIR``.
"""
