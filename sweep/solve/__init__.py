"""Solve: the MILP (``milp``), a mix's routing LP (``routing``), the frontier of independent offerings
(``decomposed``), the min-$/token methods (``methods``), method results as rows (``result``), one scenario end
to end (``prepare``) and the design note's Solver interface (``compat``). Reads ``inputs`` and ``fleet``."""
