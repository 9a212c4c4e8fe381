#!/usr/bin/env bash
# Train the model only when config, domain or training data changed since the last training.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=models/.fingerprint
fingerprint=$(cat config.yml domain.yml $(find data -name '*.yml' | sort) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] && ls models/*.tar.gz >/dev/null 2>&1; then
  echo "==> model is up to date ($(ls -t models/*.tar.gz | head -1))"
  exit 0
fi
echo "==> training the model (about two minutes on 2 cores)..."
start=$(date +%s)
rm -f models/*.tar.gz
.venv/bin/rasa train --fixed-model-name cartguard --out models --quiet
echo "$fingerprint" > "$stamp"
echo "==> trained in $(( $(date +%s) - start )) s: models/cartguard.tar.gz"
