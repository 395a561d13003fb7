"""How runs compare (runs.py); the split report is `prismrl.prism.report`."""
