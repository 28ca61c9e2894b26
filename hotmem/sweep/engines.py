"""Execution engines behind one interface: ``engine.map(fn, batches)`` yields each batch's
result as it completes. :class:`LocalEngine` (the default) runs batches on local worker
processes, all cores; :class:`DaskEngine` on a Dask cluster (``tcp://HOST:PORT`` or a
``dask.distributed.Client``)."""
from __future__ import annotations

import errno
import os

from hotmem.errors import HotplugError


class Engine:
    workers: int = 1

    def map(self, fn, batches, *args):
        raise NotImplementedError

    def close(self):
        pass


class SerialEngine(Engine):
    """This process, one batch after the other (``workers=0``: no pool to start)."""

    def map(self, fn, batches, *args):
        for b in batches:
            yield fn(b, *args)


class LocalEngine(Engine):
    """Local worker processes (concurrent.futures.ProcessPoolExecutor); ``workers`` defaults to
    the cores this process may run on."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or len(os.sched_getaffinity(0))
        self.pool = None

    def map(self, fn, batches, *args):
        from concurrent.futures import ProcessPoolExecutor, as_completed
        if self.pool is None:
            import multiprocessing
            self.pool = ProcessPoolExecutor(self.workers,
                                            mp_context=multiprocessing.get_context("fork"))
        futures = [self.pool.submit(fn, b, *args) for b in batches]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class DaskEngine(Engine):
    """A Dask cluster: a ``dask.distributed.Client``, or the scheduler address to connect to
    (HotplugError ECONNREFUSED when it does not answer within ``connect_timeout`` seconds)."""

    def __init__(self, client=None, scheduler: str | None = None, connect_timeout: float = 10):
        self.own = client is None
        if client is None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise HotplugError(errno.ENOPKG, "--scheduler needs dask.distributed: "
                                   "pip install 'hotmem[sweep]'") from None
            try:
                client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise HotplugError(errno.ECONNREFUSED, f"scheduler {scheduler} does not answer: "
                                   f"{msg}") from None
        self.client = client
        self.workers = max(1, sum(client.nthreads().values()))

    def map(self, fn, batches, *args):
        from dask.distributed import as_completed
        futures = [self.client.submit(fn, b, *args, pure=False) for b in batches]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            self.client.cancel(futures)

    def close(self):
        if self.own:
            self.client.close()


def engine_for(engine=None, *, client=None, scheduler=None, workers=None,
               connect_timeout: float = 10) -> Engine:
    """The engine of a sweep: one given, a Dask client or address, else local processes
    (``workers=0``: this process)."""
    if isinstance(engine, Engine):
        return engine
    if client is not None or scheduler:
        return DaskEngine(client, scheduler, connect_timeout)
    return SerialEngine() if workers == 0 else LocalEngine(workers)
