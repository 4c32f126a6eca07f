"""nmech_analysis: read nmech stores, fit the traces against theory, write the HTML report.

    python3 -m nmech_analysis report STORE [STORE ...] -o DIR
    python3 -m nmech_analysis summary STORE [STORE ...]
"""
from .reader import FamilyTraits, RunInfo, list_runs, load_run

__all__ = ["FamilyTraits", "RunInfo", "list_runs", "load_run"]

__version__ = "0.1.0"
