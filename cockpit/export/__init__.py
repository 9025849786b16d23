"""Runs out to other tools: TensorBoard event files, from a run directory or live.

``cockpit export RUN_DIR --tensorboard OUT_DIR`` (:func:`cockpit.export.tensorboard.export_run`)
and ``run.tensorboard = true`` (:class:`cockpit.export.tb_listener.TensorBoardListener`)
write the same tags (:mod:`cockpit.export.tags`). TensorBoard is an optional extra:
``pip install '.[tensorboard]'``.
"""
