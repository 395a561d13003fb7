"""ALFWorld on the real text engine: official or generated ("ALFWorld-procedural") games.

engine.AlfWorldEnv (the Env; `make("alfworld")`), generate.generate_games (offline games),
verify (planner check), expert (thoughts, wrappers), prompt (SYSTEM_PROMPT, observation_message).
Importing this package does not import alfworld; the modules do.
"""
