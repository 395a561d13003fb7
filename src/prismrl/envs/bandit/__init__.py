"""A two-door text bandit with a known optimal action: the sanity check for RL and evaluation."""
