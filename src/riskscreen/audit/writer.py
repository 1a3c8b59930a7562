"""Group commit: one writer thread per store and process commits whatever callers have queued.

A durable commit costs an fsync (SQLite) or a WAL flush and several round trips (PostgreSQL),
whether it holds one record or hundreds. So callers do not commit: they queue their entries and
get a :class:`concurrent.futures.Future`; a single writer thread takes everything queued (up to
``max_batch`` entries), commits it in one transaction through a :class:`Committer`, and only
then resolves the futures, each with its own results, or fails all of them if the transaction
did not commit. While one transaction is on disk the next batch gathers, so the commit rate
follows the load without any waiting on purpose.

This module knows nothing about SQL: the committer says how a batch becomes one transaction.
It keeps the writer honest across ``fork`` (a child starts its own thread and never touches the
parent's connections), and stops the thread when the owner is closed or garbage-collected.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

E = TypeVar("E")
R = TypeVar("R")
E_contra = TypeVar("E_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

DEFAULT_MAX_BATCH = 512
logger = logging.getLogger(__name__)


class Committer(Protocol[E_contra, R_co]):
    """Writes a batch of entries in one transaction: all of them, in order, or none."""

    def commit(self, entries: Sequence[E_contra]) -> Sequence[R_co]:
        """Commit the entries and return one result per entry, in order, once committed."""
        ...

    def close(self) -> None:
        """Release the connection; called in the writer thread, after a failure or at the end."""
        ...


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What the writer has done so far (in this process): transactions and the entries in them.

    ``records / transactions`` is the mean group size; failed ones count what was refused.
    """

    transactions: int = 0
    records: int = 0
    failed_transactions: int = 0
    failed_records: int = 0


@dataclass(slots=True)
class _Job:
    entries: Sequence[Any]
    future: Future[Any]
    single: bool  # resolve with the one result rather than a list


_STOP = object()  # queued by close() (or when the owner is collected): drain, then end


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats = WriterStats()

    def add(self, *, ok: bool, records: int) -> None:
        with self.lock:
            s = self.stats
            if ok:
                self.stats = WriterStats(
                    s.transactions + 1, s.records + records, s.failed_transactions, s.failed_records
                )
            else:
                self.stats = WriterStats(
                    s.transactions, s.records, s.failed_transactions + 1, s.failed_records + records
                )


class _Worker:
    """The writer thread's state. It holds no reference to the owner, so the owner can be freed."""

    def __init__(
        self,
        open_committer: Callable[[], Committer[Any, Any]],
        unavailable: Callable[[str], Exception],
        counters: _Counters,
        max_batch: int,
    ) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.open_committer = open_committer
        self.unavailable = unavailable
        self.counters = counters
        self.max_batch = max_batch
        self.committer: Committer[Any, Any] | None = None
        self.carry: _Job | None = None

    def run(self) -> None:
        try:
            stop = False
            while not stop:
                jobs, stop = self._next_batch()
                if jobs:
                    self._commit(jobs)
        finally:
            self._drop_committer()

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Everything queued now, up to max_batch entries (a larger single job goes alone)."""
        jobs: list[_Job] = []
        count = 0
        item = self.carry if self.carry is not None else self.queue.get()
        self.carry = None
        while True:
            if item is _STOP:
                return jobs, True
            if jobs and count + len(item.entries) > self.max_batch:
                self.carry = item
                return jobs, False
            if item.future.set_running_or_notify_cancel():  # a cancelled job is not written
                jobs.append(item)
                count += len(item.entries)
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return jobs, False

    def _commit(self, jobs: list[_Job]) -> None:
        entries = [entry for job in jobs for entry in job.entries]
        try:
            if self.committer is None:
                self.committer = self.open_committer()
            results = self.committer.commit(entries)
        except Exception as exc:
            self._drop_committer()  # the next batch reconnects
            self.counters.add(ok=False, records=len(entries))
            # The driver's own message only: SQLAlchemy's would carry the payloads (bound values).
            cause = getattr(exc, "orig", None) or exc
            logger.warning(
                "%d record(s) not committed: %s: %s", len(entries), type(cause).__name__, cause
            )
            for job in jobs:
                error = self.unavailable("audit record(s) could not be committed")
                error.__cause__ = exc
                job.future.set_exception(error)
            return
        self.counters.add(ok=True, records=len(entries))
        start = 0
        for job in jobs:
            end = start + len(job.entries)
            job.future.set_result(results[start] if job.single else list(results[start:end]))
            start = end

    def _drop_committer(self) -> None:
        committer, self.committer = self.committer, None
        if committer is not None:
            try:
                committer.close()
            except Exception:  # closing a broken connection may fail too; it is gone either way
                logger.debug("closing the audit committer failed", exc_info=True)


class GroupCommitWriter(Generic[E, R]):
    """Queue entries from any thread; one thread per process commits them in groups.

    Args:
        open_committer: called in the writer thread to get a committer (again after a failure);
            it must not refer to the writer's owner, or the owner is never freed.
        unavailable: builds the exception a caller sees when its entries were not committed
            (or not certainly), and when it submits after :meth:`close`.
        max_batch: most entries per transaction; what does not fit waits for the next one.
    """

    def __init__(
        self,
        open_committer: Callable[[], Committer[E, R]],
        *,
        unavailable: Callable[[str], Exception],
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str = "group-commit-writer",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._open_committer = open_committer
        self._unavailable = unavailable
        self._max_batch = max_batch
        self._name = name
        self._counters = _Counters()
        self._closed = False
        self._forget()
        _WRITERS.add(self)

    def _forget(self) -> None:
        """No writer thread (yet, or any more: after a fork it lives in the parent only)."""
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> WriterStats:
        """Transactions and entries committed (and failed) by this process's writer thread."""
        return self._counters.stats

    def submit_one(self, entry: E) -> Future[R]:
        """Queue one entry; the future resolves with its result once its transaction commits."""
        return self._submit(_Job([entry], Future(), single=True))

    def submit_many(self, entries: Sequence[E]) -> Future[list[R]]:
        """Queue entries that are committed together, consecutively, in one transaction."""
        if not entries:
            raise ValueError("submit at least one entry")
        return self._submit(_Job(list(entries), Future(), single=False))

    def _submit(self, job: _Job) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise self._unavailable("the audit store is closed")
            if self._worker is None or self._thread is None or not self._thread.is_alive():
                self._start()
            assert self._worker is not None
            self._worker.queue.put(job)
        return job.future

    def _start(self) -> None:
        worker = _Worker(self._open_committer, self._unavailable, self._counters, self._max_batch)
        thread = threading.Thread(target=worker.run, name=self._name, daemon=True)
        thread.start()
        self._worker, self._thread = worker, thread
        # If the owner is dropped without close(), the thread drains, closes its connection and
        # ends. SimpleQueue.put is safe to call from a finaliser.
        weakref.finalize(self, worker.queue.put, _STOP).atexit = False

    def in_writer_thread(self) -> bool:
        """Whether the caller is the writer thread (which must never wait on its own futures)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self) -> None:
        """Commit (or fail) everything already submitted, stop the thread; later submits fail."""
        with self._lock:
            self._closed = True
            worker, thread = self._worker, self._thread
            if worker is not None:
                worker.queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here; its queue, locks and connection belong to
        # the parent. Keep them referenced (closing the parent's SQLite connection in a child
        # can drop the child's own locks on the file) and start afresh on the next submit.
        if self._worker is not None:
            _ABANDONED_IN_CHILD.append(self._worker)
        self._counters.lock = threading.Lock()
        self._forget()


_WRITERS: weakref.WeakSet[GroupCommitWriter[Any, Any]] = weakref.WeakSet()
_ABANDONED_IN_CHILD: list[_Worker] = []


def _after_fork_in_child() -> None:
    for writer in list(_WRITERS):
        writer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
