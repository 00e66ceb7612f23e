"""Copy a benchmark report into docs/performance.md: `python -m bench.docs [SCALE]`.

The document keeps the latest report of a scale verbatim between two markers,

    <!-- bench-report:standard:begin -->
    ...
    <!-- bench-report:standard:end -->

so re-running the benchmark and this script regenerates the numbers without
touching the prose around them. Links to the plot and the plans are rewritten
to point at bench/results/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "bench" / "results"


def include(scale: str = "standard", doc: Path = DOC, results: Path = RESULTS) -> bool:
    """Replace the report block of `scale` in `doc`; returns False when there is no block."""
    report = (results / f"bench-{scale}.md").read_text()
    rel = Path("..") / results.relative_to(ROOT) if results.is_relative_to(ROOT) else results
    # Demote the report's headings by one level: it sits inside a section of the doc.
    report = re.sub(r"^(#+) ", r"#\1 ", report, flags=re.MULTILINE)
    report = re.sub(r"\]\((bench-[^)]+)\)", lambda m: f"]({rel / m.group(1)})", report)
    report = re.sub(r"`(bench-[\w.-]+\.txt)`", lambda m: f"`{rel / m.group(1)}`", report)
    begin, end = f"<!-- bench-report:{scale}:begin -->", f"<!-- bench-report:{scale}:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n\n{report.strip()}\n\n{end}{tail}")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    scale = args[0] if args else "standard"
    if not include(scale):
        print(f"{DOC} has no bench-report:{scale} markers", file=sys.stderr)
        return 1
    print(f"updated {DOC} from bench/results/bench-{scale}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
