#!/usr/bin/env bash
# Train the model when config, domain or training data changed since the last training.
#
# * Rasa's training cache (.rasa/cache) is kept: after a change to stories or rules only, the NLU
#   components are restored from it and only the dialogue policies train (docs/benchmarks.md).
# * Always a COMPLETE model (`rasa train`, never `rasa train core`), written to a temporary
#   directory first: models/cartguard.tar.gz is replaced (one rename) only once the new model is
#   written, so a failed or interrupted training leaves the old model in place.
# * The console gets one line per component and its epochs; Rasa's own output goes to
#   $CARTGUARD_DATA_DIR/logs/train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS="${CARTGUARD_DATA_DIR:-$PWD/var}/logs"
model=models/cartguard.tar.gz
stamp=models/.fingerprint
fingerprint=$(cat config.yml domain.yml $(find data -name '*.yml' | sort) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] && [ -f "$model" ]; then
  echo "==> model is up to date ($model)"
  exit 0
fi
if [ -d .rasa/cache ]; then
  echo "==> training the model (changed parts only; unchanged ones come from .rasa/cache)"
else
  echo "==> training the model from scratch (several minutes on 2 cores, see docs/benchmarks.md)"
fi
start=$(date +%s)
mkdir -p models
tmp=$(mktemp -d models/.training.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python scripts/train_progress.py --out "$tmp" --log "$LOGS/train.log"
mv -f "$tmp/cartguard.tar.gz" "$model"
echo "$fingerprint" >"$stamp"
echo "==> trained in $(($(date +%s) - start)) s: $model"
