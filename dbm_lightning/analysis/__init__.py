"""After training: microstates (k-means on the per-frame embedding), figures and sweep reports.

Submodules are imported on use (``from dbm_lightning.analysis.microstates import ...``), so that
reading one does not pull matplotlib or a run's data pipeline.
"""
