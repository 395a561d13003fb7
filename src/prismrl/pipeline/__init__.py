"""The pipeline around the paper's stages: `stages` (Stages I–III in one go: `prism probe / route /
demo`), and `prism run`'s parts: `run_config` (methods and the run config), `phase` (the one
contract of a phase), `phases` (each phase), `run` (the chain)."""
