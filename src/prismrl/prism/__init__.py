"""The paper's three stages, one module each: Stage I `probe.py` (one backward of the SFT loss,
a gradient norm per projection; `units.py` finds the projections, `batched.py` is the same probe
several trajectories at a time, `runner.py` drives it over a file with resume and sharding),
Stage II `score.py` (how concentrated the norm vector is), Stage III `route.py` (the median
split), and `report.py` (what a routing looks like)."""
