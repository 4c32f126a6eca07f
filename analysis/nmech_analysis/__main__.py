"""Command line: `python3 -m nmech_analysis report|summary STORE [STORE ...]`."""
from __future__ import annotations

import argparse
import sys

from .reader import StoreFormatError
from .summary import DEFAULT_MAX_ROWS, analyse, columns, default_workers, format_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m nmech_analysis",
                                description="Fit nmech stores against theory and report.")
    sub = p.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="write DIR/index.html, DIR/summary.csv and figures")
    rep.add_argument("stores", nargs="+", metavar="STORE")
    rep.add_argument("-o", "--output", required=True, metavar="DIR")
    rep.add_argument("--x", default="lr", help="heatmap column axis (default lr)")
    rep.add_argument("--y", default="batch_size", help="heatmap row axis (default batch_size)")
    rep.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS,
                     help="rows read per run for curves and fits, evenly spaced (default %(default)s)")
    rep.add_argument("--jobs", type=int, default=None,
                     help="processes that analyse runs and draw figures (default: CPUs, at most 8)")
    summ = sub.add_parser("summary", help="print the summary table")
    summ.add_argument("stores", nargs="+", metavar="STORE")
    summ.add_argument("--all", action="store_true", help="every column of summary.csv")
    summ.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    summ.add_argument("--jobs", type=int, default=None, help="processes that analyse runs")
    a = p.parse_args(argv)
    try:
        if a.command == "report":
            from .report import build_report  # matplotlib only where needed
            index = build_report(a.stores, a.output, a.x, a.y, a.max_rows, a.jobs)
            print(index)
            return 0
        results = analyse(a.stores, a.max_rows, a.jobs if a.jobs is not None else default_workers())
        print(format_table(results, columns(results) if a.all else None))
        return 0
    except (OSError, StoreFormatError) as e:
        print(f"nmech_analysis: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
