"""Where a server process spends its time during a scenario: py-spy (the bench
dependency group) samples it, and the collapsed stacks are summed by function.

    profile = Profile(pid, seconds=10, to=Path("bench/results/fanout-daphne.txt"))
    ... the load ...
    print(profile.summary())

Only samples of threads holding the GIL are kept (``--gil``): with one event loop
per process, that is the time the process can spend on anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: Frames py-spy writes as ``function (path/to/module.py:line)``.
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def where(frame: str) -> str:
    """``module.function`` for a frame, short enough to read in a table."""
    found = FRAME.match(frame)
    if not found:
        return frame
    path = found["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    module = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    return f"{module}.{found['function']}"


class Profile:
    def __init__(self, pid: int, *, seconds: float, to: Path, rate: int = 250) -> None:
        self.path = to
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.process = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
             "--rate", str(rate), "--gil", "--nonblocking", "--format", "raw",
             "--output", str(to)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def summary(self, top: int = 18) -> str:
        """Shares of the samples: by innermost function (self) and by function on the stack."""
        _, errors = self.process.communicate(timeout=120)
        if self.process.returncode or not self.path.exists():
            return f"py-spy failed: {errors.strip()[-500:]}"
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        total = 0
        for line in self.path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [where(f) for f in stack.split(";")[1:]]  # the first is the thread
            n = int(count)
            total += n
            if frames:
                own[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
        if not total:
            return "py-spy: no samples with the GIL held"
        lines = [f"{total} samples with the GIL held ({self.path})", "self:"]
        lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]  # fmt: skip
        lines.append("on the stack:")
        lines += [
            f"  {100 * n / total:5.1f} %  {name}"
            for name, n in inclusive.most_common(top * 2)
        ]
        return "\n".join(lines)
