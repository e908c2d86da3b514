"""Fleet: what one replica of a layout can serve — the performance model (``perf``), its calibration,
latency at load, homogeneous layouts and mixed-GPU pipelines (``candidates``, ``pipelines``).
Reads ``inputs``; knows nothing of solving."""
