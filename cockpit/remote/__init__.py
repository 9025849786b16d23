"""Detached runs: a control socket beside the trainer, a link that attaches to it, discovery.

Nothing here imports Textual or Rich; the attached cockpit itself lives in
:mod:`cockpit.ui.attached`.
"""
