"""Scoring chunks in input order with forked workers: ``--jobs N`` is this process and N-1 forked workers.

The workers are forked after :func:`warm_up`, so they share the loaded model, jieba's dictionary and OpenCC's
tables with this process instead of loading their own. They die with this process, however it ends (SIGKILL
included), and a run that stops early kills them rather than waiting.

Each worker has a pipe of its own for items and one for results, and a thread here feeds its items (so this
process never blocks on a full pipe while the worker blocks on its own). Not ``concurrent.futures``: killing the
workers of a ``ProcessPoolExecutor`` and then shutting it down can hang for ever (its queue feeder keeps writing to
a pipe no one reads), which ``predict … | head`` showed now and then.
"""

from __future__ import annotations

import gc
import itertools
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, Pipe
from typing import Any

from pipeline.errors import UserError

# Items a worker holds at a time, the one it is doing included: one more waits for it while this process scores
# an item of its own. (3 measured no faster on 2 cores; 4 per process of read-ahead was faster than 2.)
QUEUED = 2
# Items done or under way, per process, beyond which this process waits for the oldest instead of reading on.
READ_AHEAD = 4
# The work of the current run: forked workers inherit it, so only the chunks and results are pickled.
_WORK: Callable[[Any], Any] | None = None


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def warm_up(model) -> None:
    """Score one post: jieba's dictionary and the OpenCC converter load on first use. Loading them now, before any
    worker is forked, lets the workers share them instead of each loading its own copy."""
    model.score(["加载词典"])


def _die_with_parent(parent: int) -> None:
    """Make this worker end when the process that forked it ends, however it ends (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    else:  # elsewhere, watch for the parent's end
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent ended before the line above took effect
        os._exit(1)


def _worker_init(parent: int) -> None:
    # The parent decides when to stop: a Ctrl-C reaches the whole process group, and the parent then ends the
    # workers itself. SIGTERM keeps its default (the parent's handler was inherited by the fork).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


class RemoteTraceback(Exception):
    """Where a worker's exception was raised, as its traceback's text (the cause of the exception re-raised here)."""

    def __str__(self) -> str:
        return self.args[0]


def _serve(items: Connection, results: Connection) -> None:
    """A worker's loop: each item in, its outcome out, until the end marker (None) or the pipe closes."""
    while True:
        try:
            item = items.recv()
        except EOFError:
            return
        if item is None:
            return
        try:
            outcome = (True, _WORK(item), None)
        except BaseException as err:  # noqa: BLE001  (re-raised in the parent, with this traceback)
            outcome = (False, err, traceback.format_exc())
        try:
            results.send(outcome)
        except Exception as err:  # noqa: BLE001  (a result or exception that cannot be pickled)
            results.send((False, RuntimeError(f"{type(err).__name__}: {err}"), traceback.format_exc()))


class _Worker:
    """A forked process that does the current work on the items sent to it, in order, and sends back each
    outcome; ``others`` are this process's ends of the earlier workers' pipes, which the new one closes."""

    def __init__(self, others: list[Connection]):
        items_out, self.items = Pipe(duplex=False)
        self.results, results_in = Pipe(duplex=False)
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the worker: it never returns from here
            code = 1
            try:
                for end in (*others, self.items, self.results):
                    end.close()
                _worker_init(parent)
                _serve(items_out, results_in)
                code = 0
            finally:
                os._exit(code)
        items_out.close()
        results_in.close()
        self.sent = 0
        self.ready: deque = deque()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.feeder = threading.Thread(target=self._feed, name=f"feed-worker-{self.pid}", daemon=True)

    def _feed(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self.items.send(item)
            except OSError:  # the worker is gone
                return
            if item is None:
                return

    def submit(self, item: Any) -> None:
        self.sent += 1
        self._queue.put(item)

    def collect(self) -> None:
        """Take the outcomes already sent back (so the worker never waits on a full pipe)."""
        while self.results.poll():
            self._receive()

    def _receive(self) -> None:
        try:
            self.ready.append(self.results.recv())
        except (EOFError, OSError):
            raise UserError(f"a worker process (pid {self.pid}) ended unexpectedly (killed, or out of memory?): "
                            "rerun, with fewer --jobs if memory is short") from None

    def busy(self) -> int:
        return self.sent - len(self.ready)

    def result(self) -> Any:
        """The outcome of the oldest item not yet taken: its result, or its exception raised here."""
        if not self.ready:
            self._receive()
        self.sent -= 1
        done, value, where = self.ready.popleft()
        if not done:
            raise value from RemoteTraceback(where)
        return value

    def close(self, kill: bool) -> None:
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._queue.put(None)
        if self.feeder.is_alive():
            self.feeder.join()
        self.items.close()
        self.results.close()
        os.waitpid(self.pid, 0)


def ordered(items: Iterable, jobs: int, work: Callable[[Any], Any]) -> Iterator:
    """``work(item)`` for each item, yielded in order, done by ``jobs`` processes: this one and ``jobs - 1``
    forked workers.

    The workers are kept fed (:data:`QUEUED` items each); this process does the items they have no room for,
    between reading and writing, and passes results on as soon as they are done, in order. That is one process
    fewer than a pool of ``jobs`` workers beside an idle parent: the same cores kept busy, and one process's
    working memory and copied pages less. Fewer than two items, or one job: no worker is forked. If the run stops
    early (an error, an interrupt, or the caller closing this generator), the workers are killed rather than
    waited for.
    """
    global _WORK
    items = iter(items)
    head = list(itertools.islice(items, 2))
    if len(head) < 2 or jobs == 1:
        for item in itertools.chain(head, items):
            yield work(item)
        return
    # fork: the workers share the already loaded model and dictionary instead of loading their own. Freezing
    # the garbage collector first keeps it from touching (and so copying) those shared pages in every worker.
    gc.collect()
    gc.freeze()
    _WORK = work
    workers: list[_Worker] = []
    finished = False
    try:
        for _ in range(jobs - 1):
            workers.append(_Worker([end for worker in workers for end in (worker.items, worker.results)]))
        for worker in workers:  # threads only once every worker is forked
            worker.feeder.start()
        pending: deque = deque()  # per item in order: the worker doing it, or (its result,) when done here
        for item in itertools.chain(head, items):
            for worker in workers:
                worker.collect()
            free = min(workers, key=_Worker.busy)
            if free.busy() < QUEUED:
                free.submit(item)
                pending.append(free)
            else:
                pending.append((work(item),))
            # What is done is passed on at once, in order; this process waits for a worker only when it is too
            # far ahead of it: the bounded read-ahead keeps memory flat however large the input is.
            for worker in workers:
                worker.collect()
            while pending and (isinstance(pending[0], tuple) or pending[0].ready):
                yield _take(pending.popleft())
            while len(pending) > READ_AHEAD * jobs:
                yield _take(pending.popleft())
        while pending:
            yield _take(pending.popleft())
        finished = True
    finally:
        for worker in workers:
            worker.close(kill=not finished)
        _WORK = None
        gc.unfreeze()


def _take(entry: _Worker | tuple) -> Any:
    return entry[0] if isinstance(entry, tuple) else entry.result()
