"""Top entries of a py-spy profile (``--format raw`` collapsed stacks), as a Markdown table.

``python -m bench.profile FILE [FILE ...] [--top 25] [--by self|total]``

Each line of a collapsed-stack file is ``frame;frame;...;frame count``. *Self* is the share of
samples whose innermost frame is that function; *total* the share of samples with the function
anywhere on the stack (counted once per sample). ``bench.ack --profile DIR`` writes these files.
Samples of other threads (aiosqlite's worker threads wait in C code that py-spy counts as busy;
their real CPU is ~1 ms a request, see docs/PERFORMANCE.md) are left out unless ``--all-threads``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from bench.common import table

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def frame_name(frame: str) -> str:
    """``func (path:line)`` → ``module-ish path:func``, without the line and the install prefix."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _SITE.sub("", match["file"])
    path = re.sub(r".*/(bot|bench)/", r"\1/", path)
    return f"{path}:{match['func']}"


def aggregate(paths: list[Path], *, main_only: bool = True) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
            frames = [f for f in frames if not f.startswith("thread ")]
            if not frames or (main_only and frames[0].startswith("threading.py:")):
                continue
            samples += count
            own[frames[-1]] += count
            for name in set(frames):
                total[name] += count
    return own, total, samples


def report(paths: list[Path], top: int, by: str, *, main_only: bool = True) -> str:
    own, total, samples = aggregate(paths, main_only=main_only)
    ranked = (own if by == "self" else total).most_common(top)
    rows = [[name, f"{own[name] / samples:.1%}", f"{total[name] / samples:.1%}"] for name, _ in ranked]
    return f"{samples} samples\n\n" + table(["function", "self", "total"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--by", choices=("self", "total"), default="total")
    parser.add_argument("--all-threads", action="store_true", help="keep the other threads' samples")
    args = parser.parse_args()
    print(report(args.files, args.top, args.by, main_only=not args.all_threads))


if __name__ == "__main__":
    main()
