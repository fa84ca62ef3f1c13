"""The live view of a run, as ``make demo`` prints it: each state in the order it happens.

A state's line appears when it finishes (name, seconds, outcome). A state that runs a nested
execution (the data run under "Prepare data") or waits for a person (a ``.waitForTaskToken``
state) gets a line when it starts, its nested states indented under it as they finish, and its
own line when it ends. States are followed by their position in the execution's history, never
by what happens to be finished at one poll, so no state is skipped however the polls fall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tools.offline.runner import StateRecord, states_of

WIDTH = 34


@dataclass
class View:
    """What one execution's view has printed: ``cursor`` states done, ``opened`` the state
    whose start line is out (its index), and the view of its nested execution."""

    indent: str = "  "
    cursor: int = 0
    opened: int | None = None
    nested: View | None = None
    lines: list[str] = field(default_factory=list)
    waiting_in: str | None = None  # the state whose start line is out and that has not ended yet

    def advance(self, history: list[dict[str, Any]], *, opens: Callable[[str], str | None] = lambda _: None,
                nested_history: Callable[[], list[dict[str, Any]] | None] = lambda: None) -> list[str]:
        """The lines to print now, given the execution's history so far. ``opens(name)``: does
        the state get a start line: ``"nested"`` (it runs a nested execution), ``"waits"`` (for
        a person), or None. ``nested_history``: the history of the nested execution of the
        state that is open, once it exists (read after ``history``, so at least as recent)."""
        records, new = states_of(history), []
        while self.cursor < len(records):
            record = records[self.cursor]
            kind = opens(record.name)
            if kind and self.opened != self.cursor:
                self.opened = self.cursor
                self.nested = View(indent=self.indent + "  ↳ ") if kind == "nested" else None
                new.append(f"{self.indent}▸ {record.name}")
            if self.opened == self.cursor and self.nested is not None:
                child = nested_history()
                if child is not None:
                    new += self.nested.advance(child)
            if record.ended is None:
                self.waiting_in = record.name if self.opened == self.cursor else None
                break
            new.append(_line(self.indent, record))
            self.cursor, self.waiting_in = self.cursor + 1, None
        self.lines += new
        return new


def _line(indent: str, record: StateRecord) -> str:
    mark = {"ok": "✓", "failed": "✗"}.get(record.outcome, "·")
    indent += "  ⫽ " * record.depth  # a Parallel state's branch states, before its own line
    return f"{indent}{mark} {record.name:<{WIDTH - len(indent)}} {record.seconds:6.2f} s  {record.outcome}"
