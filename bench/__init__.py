"""The benchmark suite of realtime: load generators, references and scenario runners.

Run it with `realtime bench [SCENARIO...] [--quick] [--out BENCHMARKS.md]`; see BENCHMARKS.md.
"""
