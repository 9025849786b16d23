"""Run reports: HTML and Markdown built from a run directory."""
