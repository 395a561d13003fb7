"""How runs compare (runs.py); the routing report is `prismrl.prism.report`."""
