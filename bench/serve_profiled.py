"""``flyteadmin`` under a profiler: ``python bench/serve_profiled.py OUT -- <flyteadmin args>``.

Used by ``--profile OUT`` of the benchmarks. With yappi installed (``pip install yappi``, not a
project dependency) every thread is profiled on the CPU clock (the asyncio loop, the Kubernetes
client's executor threads and the watch threads); without it, cProfile sees the main thread
only. On exit ``OUT`` gets a pstats file and ``OUT.txt`` the top functions by own and by
cumulative time.
"""

from __future__ import annotations

import io
import pstats
import sys


def _write_report(stats: pstats.Stats, out: str) -> None:
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(60)
    with open(out + ".txt", "w") as f:
        f.write(text.getvalue())


def main() -> None:
    out, sep, *argv = sys.argv[1:]
    if sep != "--":
        raise SystemExit("usage: python bench/serve_profiled.py OUT -- <flyteadmin args>")
    from flyteadmin.cli import main as flyteadmin_main

    try:
        import yappi
    except ImportError:
        yappi = None
    if yappi is not None:
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True)
        try:
            flyteadmin_main(argv)
        finally:
            yappi.stop()
            yappi.get_func_stats().save(out, type="pstat")
            _write_report(pstats.Stats(out), out)
    else:
        import cProfile

        profiler = cProfile.Profile()
        try:
            profiler.runcall(flyteadmin_main, argv)
        finally:
            profiler.dump_stats(out)
            _write_report(pstats.Stats(out), out)


if __name__ == "__main__":
    main()
