"""2N's limits on a holder's plates, checked when lists are imported and when one plate is added.

A 2N access unit takes a recognised plate as a user's credential: a user (Gantry's ``holder``,
2N's ``uuid``) has at most 20 licence plates, each at most 10 characters, spaces ignored. A list
file that breaks them would load into Gantry and then fail on the unit, or be cut short there, so
the import refuses it, naming the line of each offending row. Plates are counted once per holder
whatever the lists they are on (a household's car on ``residents`` and ``permit`` is one plate),
and the length is that of the plate as Gantry normalises it (spaces and dashes dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gantry.events import HotlistEntry

MAX_PLATES_PER_HOLDER = 20
MAX_PLATE_CHARACTERS = 10


def holder_problems(rows: Sequence[tuple[int, HotlistEntry]],
                    existing: Iterable[HotlistEntry] = ()) -> list[tuple[int, str, str]]:
    """(line, column, why) for every row of a list file that breaks 2N's limits, in line order.
    ``existing`` is the hotlist the file is imported into: its holders' plates count too, but for
    the entries the file replaces."""
    replaced = {entry.key for _, entry in rows}
    plates: dict[str, dict[str, int]] = {}  # holder -> plate -> the line it first came on (0: the hotlist)
    for entry in existing:
        if entry.holder is not None and entry.key not in replaced:
            plates.setdefault(entry.holder, {}).setdefault(entry.plate, 0)
    problems: list[tuple[int, str, str]] = []
    for line, entry in rows:
        if entry.holder is None:
            continue
        if len(entry.plate) > MAX_PLATE_CHARACTERS:
            problems.append((line, "plate", f"{entry.plate} has {len(entry.plate)} characters; a holder's plate has at "
                                            f"most {MAX_PLATE_CHARACTERS} (spaces ignored)"))
            continue
        held = plates.setdefault(entry.holder, {})
        if entry.plate not in held and len(held) == MAX_PLATES_PER_HOLDER:
            problems.append((line, "holder", f"{entry.holder} already has {MAX_PLATES_PER_HOLDER} plates "
                                             f"({_where(held.values())}); at most {MAX_PLATES_PER_HOLDER} per holder"))
            continue
        held.setdefault(entry.plate, line)
    return problems


def entry_problem(entry: HotlistEntry, existing: Iterable[HotlistEntry]) -> tuple[str, str] | None:
    """(field, why) when adding this one entry to the ``existing`` hotlist would break 2N's limits
    (``gantry hotlist add --holder``), the same rule as an import of a one-row file."""
    found = holder_problems([(1, entry)], existing)
    return (found[0][1], found[0][2]) if found else None


def _where(lines: Iterable[int]) -> str:
    """Where a holder's plates came from: the hotlist (line 0) and the file's lines."""
    found = list(lines)
    on_file = sorted(line for line in found if line)
    parts = [f"{len(found) - len(on_file)} on the hotlist"] if len(on_file) < len(found) else []
    if on_file:
        parts.append(f"lines {on_file[0]}-{on_file[-1]}" if len(on_file) > 1 else f"line {on_file[0]}")
    return ", ".join(parts)
