"""Training after routing: SFT on D_SFT (`sft`, assistant-only loss from the shared formatter) and RL on the D_RL tasks."""
