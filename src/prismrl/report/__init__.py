"""Reports: what a split looks like (split.py) and how runs compare (runs.py)."""
