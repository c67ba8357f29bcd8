"""What a request may run: one statement that stays inside the warehouse.

chDB is clickhouse-local: whatever it is asked runs with this process's rights. ``file()``,
``url()``, ``s3()``, ``remote()``, ``executable()`` and their table engines read and write the
file system, the network and other programs; ``INTO OUTFILE`` and ``FROM INFILE`` read and write
files; a disk defined in a table's settings puts data anywhere; ``BACKUP``, ``ATTACH … FROM`` and
``SYSTEM`` reach the files and the process. ClickHouse's ``readonly`` setting (which GET requests
run under) stops writes and table functions, but not the scalar ``file()`` nor ``INTO OUTFILE``,
and POST must write. chDB has no access control to grant less. So every statement is first
parsed by ClickHouse's own parser, and refused unless

- it is a single statement: chDB runs each statement of a string, ``formatQuery`` accepts one;
- its kind is one Gantry's clients need (queries, inserts, schema changes, roles);
- no function, table function or engine in its syntax tree is one that leaves the warehouse:
  every table function and engine the engine knows is refused unless it is in ``SAFE_SOURCES``,
  so one added by a newer chDB is refused until someone looks at it;
- it has no dictionary source, ``INTO OUTFILE``, ``FROM INFILE`` or ad-hoc ``disk(...)``.

What is checked is ClickHouse's rendering of the very statement that runs. Inline ``INSERT …
VALUES`` data is refused: the parser stops at the data, so a statement after it would run
unchecked (send ``FORMAT Values`` and the rows, which the server spools to a file).
"""

from __future__ import annotations

import re
from typing import Any

# Table functions, table engines and database engines that only read or make data inside the
# warehouse. Lower case: names are compared lower-cased, so ``FILE(...)`` cannot slip past ``file``.
SAFE_SOURCES = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "generaterandom",
        "primes", "values", "null", "view", "merge", "format", "input", "dictionary",
        "mergetree", "replacingmergetree", "summingmergetree", "aggregatingmergetree", "collapsingmergetree",
        "versionedcollapsingmergetree", "coalescingmergetree", "graphitemergetree",
        "memory", "log", "tinylog", "stripelog", "set", "join", "buffer", "materializedview", "atomic", "ordinary",
    }
)  # fmt: skip
ALLOWED_KINDS = re.compile(
    r"(SelectWithUnionQuery|SelectIntersectExceptQuery|Explain|Show\w*|Describe\w*|Exists\w*|InsertQuery|CreateQuery"
    r"|AlterQuery|DropQuery|Rename|OptimizeQuery|TruncateQuery|DeleteQuery|CheckQuery|Set|UseQuery"
    r"|CreateRoleQuery|GrantQuery)$"
)
_NODE = re.compile(r"^\s*(Function|FunctionWithKeyValueArguments)\s+(\S+)", re.MULTILINE)
_INLINE_DATA = re.compile(r"\sFORMAT\s+\S+$")
_FILE_CLAUSES = re.compile(r"\b(INTO\s+OUTFILE|FROM\s+INFILE|disk\s*\()", re.IGNORECASE)
CODE_ACCESS_DENIED = 497
_PASSED_KEPT = 4096


class Refused(Exception):
    """The statement may not run here; ``str`` is ClickHouse-style error text."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Code: {CODE_ACCESS_DENIED}. DB::Exception: gantry: {reason}. (ACCESS_DENIED)")
        self.code = CODE_ACCESS_DENIED


class Guard:
    """Checks statements on a chDB connection; built once from the engine's own catalogue."""

    def __init__(self, conn: Any) -> None:
        names = conn.query(
            "SELECT lower(name) FROM system.table_functions UNION ALL SELECT lower(name) FROM system.table_engines "
            "UNION ALL SELECT lower(name) FROM system.database_engines",
            "TabSeparated",
        )
        self.forbidden = frozenset(names.bytes().decode().split()) - SAFE_SOURCES
        # Statements already passed: the sink sends the same INSERT for every batch, and the two
        # parses cost more than a small insert. Callers serialise, so a plain set will do.
        self._passed: set[tuple[str, tuple[tuple[str, str], ...], bool]] = set()

    def check(self, conn: Any, sql: str, params: dict[str, str], *, data_follows: bool = False) -> None:
        """Raise :class:`Refused`, or the parser's own error, unless ``sql`` may run.

        ``conn`` is the request's session before its settings are applied: none of them may
        steer the parse (``dialect`` is refused by :func:`check_settings`; any other can only
        make a statement parse that would not parse here, which is refused). ``data_follows``
        for an ``INSERT … FORMAT X`` whose rows the server spools to a file.
        """
        key = (sql, tuple(sorted(params.items())), data_follows)
        if key in self._passed:
            return
        self._refuse_outside(conn, sql, params, data_follows)
        if len(self._passed) >= _PASSED_KEPT:
            self._passed.clear()
        self._passed.add(key)

    def _refuse_outside(self, conn: Any, sql: str, params: dict[str, str], data_follows: bool) -> None:
        # ClickHouse's own rendering of the one statement: formatQuery refuses several, drops
        # inline data, and quotes literals and identifiers, so the clause search cannot be misled
        # by comments or spacing (a string that merely contains "INTO OUTFILE" is refused too).
        canonical = conn.query(f"SELECT formatQuerySingleLine({sql_literal(sql)})", "TabSeparatedRaw")
        canonical = canonical.bytes().decode().strip()
        clause = _FILE_CLAUSES.search(canonical)
        if clause:
            raise Refused(f"{' '.join(clause.group(1).split()).upper()} reaches outside the warehouse")
        if canonical.startswith("INSERT") and not data_follows and _INLINE_DATA.search(canonical):
            raise Refused("INSERT with inline data: send the rows after FORMAT (e.g. FORMAT Values)")
        # The canonical text, never ``sql``: chDB would run a second statement hidden in the data.
        tree = conn.query(f"EXPLAIN AST {canonical}", "TabSeparatedRaw", params=params).bytes().decode()
        kind = tree.split(None, 1)[0] if tree.strip() else ""
        if not ALLOWED_KINDS.match(kind):
            raise Refused(f"{kind or 'this'} statements are not served")
        # Identifiers are printed raw, so a crafted name can add lines to the tree but never hide
        # one: refusing on any line that names a forbidden source is safe.
        for node, name in _NODE.findall(tree):
            if node == "FunctionWithKeyValueArguments":
                raise Refused("dictionary sources are not served")
            if name.lower() in self.forbidden:
                raise Refused(f"{name} reaches outside the warehouse")


def check_settings(settings: dict[str, str]) -> None:
    """A request's settings may not switch the statement to a parser the check does not use."""
    dialect = settings.get("dialect", "clickhouse").strip().lower()
    if dialect != "clickhouse":
        raise Refused(f"dialect {dialect!r} is not served")


def sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
