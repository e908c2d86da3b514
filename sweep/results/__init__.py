"""Results: the Parquet dataset's schema, the store that writes it (parts, resume, lock, compaction),
and what reads it (``query``, ``plot``, ``html_report``). Reading a dataset needs neither PuLP, HiGHS
nor Ray."""
