"""The SQL database behind the conversation store and the usage figures: SQLite in the data dir, or
PostgreSQL shared by several `devcopilot serve` replicas on different machines (`[server] database_url`).

The SQL is written once, in the dialect both understand, with `?` placeholders; the few differences
(placeholders, transactions, adding a column, a timestamp's quarter hour) live here. psycopg is
imported only when a PostgreSQL URL is given.
"""
from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from copilot.config import check_database_url, redact_url

CONNECT_TIMEOUT_S = 5  # a server that does not answer in this time is down: the chat goes on without the record
RETRY_AFTER_S = 5.0  # after a failed connection, calls fail at once for this long instead of each waiting again
# Held while the schema is created or migrated, so servers starting at once do not race on PostgreSQL's own
# tables (CREATE TABLE IF NOT EXISTS alone can fail when two run at once).
SCHEMA_LOCK = zlib.crc32(b"devcopilot schema")
T = TypeVar("T")


class DatabaseDown(RuntimeError):
    """The database cannot be reached; one clear sentence."""


class Database:
    """One connection, opened at the first query, used under a lock (as the SQLite store always was),
    and opened again after a failure.

    `where` is a SQLite file or a PostgreSQL URL; `schema` is run on every (re)connection (CREATE ... IF
    NOT EXISTS), then `added_columns` ((table, column, declaration)) are added where missing."""

    def __init__(self, where: Path | str, schema: str, added_columns: Sequence[tuple[str, str, str]] = ()):
        self.postgres = isinstance(where, str)
        self.where = check_database_url(where) if self.postgres else where
        self.schema, self.added_columns = schema, list(added_columns)
        self.lock = threading.RLock()
        self.conn = None
        self._failed_at = 0.0
        self._in_transaction = False
        self._queue_file = None  # SQLite: the lock file writers queue on (see _writers_queue)
        self._group = threading.Condition()  # SQLite: writes waiting to be committed together (see write)
        self._queued: list[_Write] = []
        self._committing = False

    def connect(self) -> None:
        """Connect now (rather than at the first query): a database that cannot be reached is then
        said at start-up, in one sentence (DatabaseDown)."""
        with self.lock:
            self._connection()

    def describe(self) -> str:
        return f"PostgreSQL at {redact_url(self.where)}" if self.postgres else str(self.where)

    # -- queries --------------------------------------------------------------------------------
    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """The rows `sql` returns (none for a statement that returns none). Outside a transaction, a
        connection found dead (the server restarted, a proxy dropped it while idle) is replaced once."""
        with self.lock:
            had = self.conn is not None
            try:
                return self._fetch(sql, params)
            except DatabaseDown:
                if not had or self.conn is not None or self._in_transaction:
                    raise
            return self._fetch(sql, params)

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def many(self, sql: str, rows: Sequence[Sequence]) -> None:
        if not rows:
            return
        with self.lock, self._translated():
            conn = self._connection()
            if self.postgres:
                with conn.cursor() as cur:
                    cur.executemany(sql.replace("?", "%s"), rows)
            else:
                conn.executemany(sql, rows)

    def write(self, fn: Callable[[Database], T]) -> T:
        """`fn(tx)` in a transaction; its result, or its error. Not for use inside `transaction()`.

        With SQLite, writes that this process's threads ask for while one commits wait for it, then
        go together in the next transaction (group commit): the file's write lock is taken once for
        them all, where each took it in turn, and a burst of writers (50 chat turns starting at once)
        stops queueing behind each other's commits. Each caller still returns once its own write is
        committed, in the order asked. PostgreSQL locks rows rather than the file, and replicas
        locking several in different orders could deadlock: there each write has its own transaction."""
        if self.postgres:
            with self.transaction() as tx:
                return fn(tx)
        job = _Write(fn)
        with self._group:
            self._queued.append(job)
            while self._committing and not job.done:
                self._group.wait()
            leading = not job.done  # the next batch is this thread's to commit: every write queued until now
            if leading:
                batch, self._queued = self._queued, []
                self._committing = True
        if leading:
            try:
                self._commit(batch)
            finally:
                with self._group:
                    self._committing = False
                    self._group.notify_all()
        return job.outcome()

    def _commit(self, batch: list[_Write]) -> None:
        try:
            error = self._together(batch)
            if error is not None and len(batch) == 1:
                batch[0].fail(error)
            elif error is not None:  # one write's error must not cost the others: each again on its own
                for job in batch:
                    error = self._together([job])
                    if error is not None:
                        job.fail(error)
        finally:
            for job in batch:  # interrupted (KeyboardInterrupt): nobody waits forever
                if not job.done:
                    job.fail(DatabaseDown("The write was interrupted before it was committed."))

    def _together(self, jobs: list[_Write]) -> Exception | None:
        """The jobs' writes in one transaction, each job given its result; or the error that rolled
        them all back."""
        try:
            with self.transaction() as tx:
                results = [job.fn(tx) for job in jobs]
        except Exception as e:
            return e
        for job, result in zip(jobs, results):
            job.succeed(result)
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """All or nothing. SQLite takes its write lock at once (BEGIN IMMEDIATE), so processes writing
        the same file queue up instead of failing on a stale read; PostgreSQL rows are locked with
        `lock_row`."""
        with self.lock, self._writers_queue():
            self.all("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
            self._in_transaction = True  # from here on, nothing is retried on a new connection
            try:
                yield self
                self.all("COMMIT")
            except BaseException:
                with contextlib.suppress(DatabaseDown):  # a lost connection has rolled it back already
                    self.all("ROLLBACK")
                raise
            finally:
                self._in_transaction = False

    @contextlib.contextmanager
    def _writers_queue(self) -> Iterator[None]:
        """SQLite: processes writing the same file (`serve --workers N`) queue on a lock file first.
        The kernel wakes the next writer the moment one ends, where SQLite's own wait for its lock
        sleeps up to 100 ms between tries."""
        if self.postgres:
            yield
            return
        if self._queue_file is None:
            self.where.parent.mkdir(parents=True, exist_ok=True)
            self._queue_file = open(self.where.with_name(self.where.name + ".writers"), "a")  # noqa: SIM115 - held open
        fcntl.flock(self._queue_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._queue_file, fcntl.LOCK_UN)

    def lock_row(self, table: str, key: str, value) -> None:
        """Inside a transaction: other writers of this row wait until it ends (SQLite: the whole file
        is locked already)."""
        if self.postgres:
            self.all(f"SELECT 1 FROM {table} WHERE {key}=? FOR UPDATE", (value,))

    def quarter_hour(self, column: str) -> str:
        """SQL for the quarter hour (since 1970) of a Unix time: every time zone's offset is a whole number
        of quarter hours, so each falls within one local day, which Python then names."""
        return f"FLOOR({column} / 900)" if self.postgres else f"CAST({column} / 900 AS INTEGER)"

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            if self._queue_file is not None:
                self._queue_file.close()
                self._queue_file = None

    # -- connecting -----------------------------------------------------------------------------
    def _fetch(self, sql: str, params: Sequence) -> list[tuple]:
        with self._translated():
            conn = self._connection()
            if not self.postgres:
                return conn.execute(sql, params).fetchall()
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description is not None else []

    def _connection(self):
        if self.conn is not None and not (self.postgres and self.conn.closed):
            return self.conn
        if not self.postgres:
            self.where.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.where, check_same_thread=False, timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes of the process, and fast
            self.conn.executescript(self.schema)
            for table, column, decl in self.added_columns:
                if column not in {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            return self.conn
        if time.monotonic() - self._failed_at < RETRY_AFTER_S:
            raise DatabaseDown(self._down_sentence("it failed a moment ago"))
        import psycopg

        conn = None
        try:
            conn = psycopg.connect(self.where, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in filter(str.strip, self.schema.split(";")):
                    conn.execute(statement)
                for table, column, decl in self.added_columns:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {decl}")
        except psycopg.Error as e:
            if conn is not None:
                conn.close()
            self._failed_at = time.monotonic()
            raise DatabaseDown(self._down_sentence(_first_line(e))) from None
        self.conn = conn
        return conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """A lost PostgreSQL connection becomes DatabaseDown (one sentence), and is reopened next time."""
        if not self.postgres:
            yield
            return
        import psycopg

        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            if self.conn is not None and (self.conn.closed or self.conn.broken):
                self.conn = None  # opened again by the next call
            raise DatabaseDown(self._down_sentence(_first_line(e))) from None

    def _down_sentence(self, why: str) -> str:
        return (f"The database ({self.describe()}) cannot be reached ({why}); check that the server "
                "runs and that server.database_url is right.")


class _Write:
    """One write waiting for its batch (Database.write): the function, then its result or its error."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.done = False
        self.result = None
        self.error: BaseException | None = None

    def succeed(self, result) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__
