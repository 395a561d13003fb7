"""PRISM Stages I and II: gradient probe (probe.py, units.py) and concentration metrics (metrics.py)."""
