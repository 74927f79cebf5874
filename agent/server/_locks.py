"""A readers-writer lock: the service's reads run together, writes run alone.

Reads (edit lists, history, facts, search) and asks share the lock; writes (tell, facts create/update/delete,
rollback) take it alone, so they stay serialised and never interleave with a read of half-written state.
Writers are preferred: once one waits, new readers queue behind it, so a stream of asks cannot starve a tell.
:class:`ServiceLocks` adds the model's lock and hands both to the agent as its ask guards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["ReadWriteLock", "ServiceLocks"]


class ReadWriteLock:
    """Many readers or one writer; not re-entrant (a thread holding it must not take it again).

    Example:
        >>> lock = ReadWriteLock()
        >>> with lock.shared():
        ...     pass
        >>> with lock.exclusive():
        ...     pass
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held together with other readers; waits while a writer holds or awaits the lock."""
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held alone: waits for the readers inside to leave (new ones wait behind this writer)."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class ServiceLocks:
    """The service's locks: ``rw`` orders reads and writes, ``model`` lets one model call run at a time.

    Also the :class:`~agent.AskGuards` of a shared agent: an ask reads memory and the KG under the read
    lock and runs the model under the model's lock, so reads and writes never wait for a model call.
    """

    def __init__(self) -> None:
        self.rw = ReadWriteLock()
        self.model = threading.Lock()

    def reading(self) -> AbstractContextManager[None]:
        return self.rw.shared()

    def answering(self) -> AbstractContextManager[bool]:
        return self.model
