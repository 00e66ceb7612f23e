"""quizbot's load benchmark: `quizbot bench` (see docs/performance.md).

The harness lives outside the `quizbot` package on purpose: it is a development
tool with heavier dependencies (psycopg2, psutil, matplotlib from the `bench`
extra) that a bot deployment never imports.
"""
