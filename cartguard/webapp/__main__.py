"""``python -m cartguard.webapp``: serve the web service on settings.host:settings.web_port."""

from __future__ import annotations

import sys

from cartguard.webapp.app import InsecureBindError, serve


def main() -> int:
    try:
        serve()
    except InsecureBindError as exc:
        print(f"cartguard web service not started: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
