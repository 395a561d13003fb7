#!/usr/bin/env bash
# Copy a finished `prism run` (or `prism rl`) folder's small summary into results/ (committed; never
# checkpoints or models): prismrl.report.save lists what is kept.
#   bash scripts/save-results.sh runs/small/webshop-sft-all-s0 results/webshop-small/sft-all-s0
set -euo pipefail
exec python -m prismrl.report.save "${1:?usage: save-results.sh RUN_DIR DEST}" "${2:?usage: save-results.sh RUN_DIR DEST}"
