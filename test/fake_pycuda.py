"""Fake ``pycuda.driver`` with pycuda's CUDA context rules, bound to pycuda's real names.

The context rules are modelled from pycuda's source (``src/cpp/cuda.hpp``): a context is
current per thread, ``Context.pop`` pops the calling thread's stack, and ``detach`` destroys
a context only when it is current on the calling thread or that thread made it; otherwise
it is dropped without being destroyed (a leak), as in pycuda.
"""

import itertools
import threading
import types

from fake_strict import _bind
from fake_strict import PYCUDA_LIST
from fake_strict import Strict
import numpy as np


class CudaState:
    """Process-wide fake driver state: live contexts, device memory, per-thread stacks."""

    def __init__(self, devices=1, make_context_error=None):
        self.devices = devices
        self.make_context_error = make_context_error
        self.live = set()
        self.leaked = set()
        self.memory = {}
        self.local = threading.local()
        self._addresses = itertools.count(0x1000, 0x1000)

    def stack(self):
        if not hasattr(self.local, 'stack'):
            self.local.stack = []
        return self.local.stack

    def current(self):
        stack = self.stack()
        while stack and not stack[-1]._valid:
            stack.pop()
        return stack[-1] if stack else None

    def require_context(self, what):
        if self.current() is None:
            raise RuntimeError(f'{what}: no CUDA context is current on this thread')


def make_pycuda(state):
    """Return ``(pycuda package, pycuda.driver)`` fakes sharing ``state``."""

    class Context(Strict):
        def __init__(self):
            self._owner = threading.get_ident()
            self._valid = True
            self._destroyed = False

        def push(self):
            state.stack().append(self)

        @staticmethod
        def pop():
            stack = state.stack()
            if not stack:
                raise RuntimeError('context::pop: cannot pop non-current context')
            stack.pop()

        def detach(self):
            if not self._valid:
                raise RuntimeError('context::detach: cannot detach from invalid context')
            current = state.current() is self
            if current or self._owner == threading.get_ident():
                self._destroyed = True
                state.live.discard(self)
            else:
                state.leaked.add(self)
            self._valid = False
            if current:
                state.stack().pop()

    class Device(Strict):
        def __init__(self, index):
            self._index = index

        @staticmethod
        def count():
            return state.devices

        def name(self):
            return 'Fake GPU'

        def make_context(self, flags=0):
            if state.make_context_error:
                raise RuntimeError(state.make_context_error)
            context = classes['Context']()
            state.live.add(context)
            state.stack().append(context)
            return context

    class DeviceAllocation(Strict):
        def __init__(self, nbytes):
            self._address = next(state._addresses)
            state.memory[self._address] = bytearray(nbytes)

        def __int__(self):
            return self._address

        def free(self):
            state.require_context('DeviceAllocation.free')
            state.memory.pop(self._address, None)

    class Stream(Strict):
        def __init__(self, flags=0):
            state.require_context('Stream')
            self.handle = next(state._addresses)

        def synchronize(self):
            state.require_context('Stream.synchronize')

    class CtxFlags(Strict):
        SCHED_BLOCKING_SYNC = 4

    class Driver(Strict):
        def __init__(self):
            self.ctx_flags = classes['CtxFlags']
            self.Context = classes['Context']
            self.Device = classes['Device']
            self.Stream = classes['Stream']

        def init(self, flags=0):
            return None

        def mem_alloc(self, nbytes):
            state.require_context('mem_alloc')
            return classes['DeviceAllocation'](nbytes)

        def pagelocked_empty(self, shape, dtype):
            state.require_context('pagelocked_empty')
            return np.empty(shape, dtype)

        def memcpy_htod_async(self, dest, src, stream=None):
            state.require_context('memcpy_htod_async')
            data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
            state.memory[int(dest)][:data.size] = data.tobytes()

        def memcpy_dtoh_async(self, dest, src, stream=None):
            state.require_context('memcpy_dtoh_async')
            raw = np.frombuffer(state.memory[int(src)], np.uint8)
            dest.view(np.uint8).reshape(-1)[:] = raw[:dest.nbytes]

    classes = _bind({'Context': Context, 'Device': Device, 'DeviceAllocation': DeviceAllocation,
                     'Stream': Stream, 'CtxFlags': CtxFlags, 'Driver': Driver}, PYCUDA_LIST)
    driver = classes['Driver']()
    package = types.ModuleType('pycuda')
    package.driver = driver
    return package, driver
