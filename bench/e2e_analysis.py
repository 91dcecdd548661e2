"""What the end-to-end numbers mean: written by hand after a full run, shown in e2e.md."""

ANALYSIS = """
## What the numbers say

(to be written after a full run)
"""
