"""Check deploy/helm/values.yaml against a checkout of Rasa's official chart.

    python deploy/helm/check_chart.py /path/to/helm-charts/charts/rasa

Validates the values against the chart's own ``values.schema.json`` and reports every key of
ours that the chart's ``values.yaml`` does not define (a typo there is silently ignored by
Helm). The chart is not kept in this repository; docs/scaling.md records the commit checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import yaml

OURS = Path(__file__).with_name("values.yaml")
#: maps whose keys are free-form in the chart (anything may go below them)
FREE_FORM = {
    "applicationSettings.endpoints.additionalEndpoints",
    "applicationSettings.credentials.additionalChannelCredentials",
    "ingress.annotations",
    "securityContext",
}


def unknown_keys(ours: object, chart: object, prefix: str = "") -> list[str]:
    if not isinstance(ours, dict) or prefix in FREE_FORM:
        return []
    found = []
    for key, value in ours.items():
        path = f"{prefix}.{key}" if prefix else key
        if not isinstance(chart, dict) or key not in chart:
            found.append(path)
        else:
            found += unknown_keys(value, chart[key], path)
    return found


def main(chart_dir: str) -> int:
    chart = Path(chart_dir)
    ours = yaml.safe_load(OURS.read_text())
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(ours), key=str)
    for error in errors:
        print(f"schema: {'.'.join(map(str, error.path))}: {error.message}")
    unknown = unknown_keys(ours, defaults)
    for path in unknown:
        print(f"not a value of the chart: {path}")
    version = yaml.safe_load((chart / "Chart.yaml").read_text())["version"]
    print(f"chart {version}: {len(errors)} schema errors, {len(unknown)} unknown keys")
    return 1 if errors or unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
