"""Side-by-side benchmarks: busignal against a hand-written redis-py loop.

``python -m benchmarks`` starts its own redis-server and worker processes,
runs every scenario in interleaved rounds (busignal, then the baseline
loop, then the other way round) and prints medians with their ratios to
the baseline measured in the same run. Interleaving matters because the
machines we measure on are small and shared: a noisy minute hurts both
sides of a ratio alike. See ``benchmarks/README.md``.
"""
