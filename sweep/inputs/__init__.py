"""Inputs: the scenario schema and its one validation pass (``schema``), the typed view of a scenario
(``settings``: a frozen dataclass per section, which every higher layer reads), scenario files (``scenario``,
``load``), catalogs (GPUs, offerings, models), request mixes and traces, calibration files, the original
solver's config folders, sweep job files, catalog import and price freshness; every user CSV is read by
``csvfile``. The lowest layer: it imports nothing else of the package except ``errors`` and ``vocab``."""
