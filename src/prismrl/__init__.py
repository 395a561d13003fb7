"""prismrl: PRISM (arXiv 2601.07224) and the hybrid SFT+RL pipeline for LLM agents."""

__version__ = "0.1.0"
