"""What a long command tells its user on stderr: progress bars, notices, and warnings once each."""
from __future__ import annotations

import time
import warnings


class Reporter:
    """Progress bars and notices on stderr (rich); warnings always, the rest unless quiet."""

    def __init__(self, quiet: bool):
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.warnings: list[str] = []
        self.foreign: list[warnings.WarningMessage] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self.console.print(f"warning: {message}", markup=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, soft_wrap=True)

    def collect(self, caught: list[warnings.WarningMessage]) -> None:
        """Show warnings raised by ganivid's modules (writer notices, curve clamping) once each."""
        for w in caught:
            if issubclass(w.category, UserWarning) and "ganivid" in str(w.filename):
                self.warn(str(w.message))
            else:
                self.foreign.append(w)
        caught.clear()

    def reissue(self) -> None:
        """Hand warnings of other libraries back to Python's filters once ours are recorded."""
        for w in self.foreign:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.foreign.clear()

    def progress(self, label: str, total: int | None):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        fps = TextColumn("{task.fields[fps]}")
        p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), fps,
                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
                     disable=self.quiet, transient=False)
        task = p.add_task(label, total=total, fps="")
        start = time.perf_counter()
        count = [0]

        def advance() -> None:
            count[0] += 1
            if count[0] % 5 == 0 or count[0] == total:
                rate = count[0] / max(time.perf_counter() - start, 1e-9)
                p.update(task, advance=5 if count[0] % 5 == 0 else count[0] % 5, fps=f"{rate:.1f} fps")

        return p, advance
