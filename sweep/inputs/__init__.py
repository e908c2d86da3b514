"""Inputs: catalogs (GPUs, offerings, models), scenario files and their validation, the original
solver's config folders, sweep job files, catalog import and price freshness. The lowest layer: it
imports nothing else of the package except ``errors`` and ``vocab``."""
