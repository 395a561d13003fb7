"""Training after routing: SFT on D_SFT (`sft`, assistant-only loss from the shared formatter) and RL on the D_RL tasks."""

from __future__ import annotations

TRAINERS = ("prismrl", "trl")


def run_rl(cfg, progress: bool = True) -> dict:
    """The RL phase on the trainer `cfg.trainer` names: `prismrl` (train/rl.py, the readable reference
    in one process) or `trl` (train/rl_trl.py, TRL's GRPOTrainer for accelerate launches). Both take
    the same RLConfig and write the same files; the choice is made here so that neither trainer
    imports the other."""
    from prismrl.errors import ConfigError

    if cfg.trainer == "prismrl":
        from prismrl.train.rl import train_rl

        return train_rl(cfg, progress)
    if cfg.trainer == "trl":
        from prismrl.train.rl_trl import train_rl_trl

        return train_rl_trl(cfg, progress)
    raise ConfigError(f"RLConfig.trainer must be one of {', '.join(TRAINERS)}, got {cfg.trainer!r}")
