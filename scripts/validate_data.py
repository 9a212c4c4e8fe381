"""Run ``rasa data validate`` and fail on every warning except two kinds that are expected here.

Expected: responses that only custom actions send (they never appear in stories), as long as an
action (or code showing the same words outside the chat, such as the secure code form) really
names them; ``utter_ask_<slot>`` for a slot a form requests (Rasa's form sends it
by name); and ``EXTERNAL_*`` intents, which the web service triggers through the
HTTP API and shoppers never type (so they have no NLU examples). Anything else (a typo in an
intent, an unused intent, a story conflict) fails the check, as ``--fail-on-warnings`` would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNUSED_RESPONSE = re.compile(r"The utterance '(\w+)' is not used in any story or rule")
EXTERNAL_INTENT = re.compile(
    r"The intent 'EXTERNAL_\w+' is listed in the domain file, but is not found"
)
WARNING = re.compile(r"UserWarning: (.*)")


def main() -> int:
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/rasa"), "data", "validate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    # Responses chosen by name in code: the actions, and the few sentences the web service
    # shows outside the chat (read through cartguard/responses.py).
    speaking = [*(ROOT / "actions").glob("*.py"), *(ROOT / "cartguard").rglob("*.py")]
    action_source = "\n".join(p.read_text() for p in speaking)
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    form_slots = {
        slot for form in (domain.get("forms") or {}).values() for slot in form["required_slots"]
    }
    problems = []
    for message in WARNING.findall(output):
        unused = UNUSED_RESPONSE.search(message)
        if unused and f'"{unused.group(1)}"' in action_source:
            continue
        if unused and unused.group(1).removeprefix("utter_ask_") in form_slots:
            continue
        if EXTERNAL_INTENT.search(message):
            continue
        problems.append(message.strip())
    if proc.returncode != 0:
        print(output)
        print("rasa data validate failed", file=sys.stderr)
        return proc.returncode
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} unexpected warning(s) from rasa data validate", file=sys.stderr)
        return 1
    print("rasa data validate: no unexpected warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
