#!/usr/bin/env bash
# Copy a finished `prism run` folder's small summary into results/ (committed; never checkpoints
# or models) or a `prism rl` folder's: config, ledger, summary, SFT/RL metrics, summaries, RL curve and transcripts, and every evaluation's
# results.json and episodes.jsonl (per-episode outcomes with transcripts).
#   bash scripts/save-results.sh runs/small/webshop-sft-all-s0 results/webshop-small/sft-all-s0
set -euo pipefail
run="${1:?usage: save-results.sh RUN_DIR DEST}"
dest="${2:?usage: save-results.sh RUN_DIR DEST}"
[[ -f "$run/config.yaml" || -f "$run/rl_config.json" ]] || { echo "$run is neither a prism run nor a prism rl folder (no config.yaml, no rl_config.json)" >&2; exit 1; }
dest="$(mkdir -p "$dest" && cd "$dest" && pwd)"
cd "$run"
find . \( -name checkpoint-\* -o -name final -o -name adapter -o -name tensorboard -o -name '.[!.]*' \) -prune -o -type f \
    \( -name config.yaml -o -name ledger.jsonl -o -name summary.json -o -name split.json -o -name 'sft_*.json*' \
       -o -name 'rl_metrics.jsonl' -o -name rl_episodes.jsonl -o -name rl_curve.png -o -name rl_config.json -o -name results.json -o -name episodes.jsonl \) -print \
    | while read -r file; do mkdir -p "$dest/$(dirname "$file")"; cp "$file" "$dest/$file"; done
echo "saved $(find "$dest" -type f | wc -l) files from $run to $dest"
