"""Engine: plans sweeps into tasks, runs them on serial/processes/Ray backends, drives the store
(``runner``), Ray clusters and jobs (``cluster``), progress and fault injection for tests."""
