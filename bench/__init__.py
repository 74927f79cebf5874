"""Benchmarks run from the repository checkout (not installed with the package).

``bench/memory_bench.py`` measures the working memory against peer vector memories (issue 3).
"""
