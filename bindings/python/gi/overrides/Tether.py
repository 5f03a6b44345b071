# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyGObject overrides for Tether: asyncio awaitables and pythonic handlers.

Installed as ``gi/overrides/Tether.py``; PyGObject loads it when a program
does ``from gi.repository import Tether``. From a source tree, put
``bindings/python`` on ``PYTHONPATH`` (``meson devenv`` does): PyGObject
extends ``gi.__path__`` and ``gi.overrides.__path__`` with every
``gi/overrides`` directory on ``sys.path`` (``pkgutil.extend_path``), so
no install is needed. docs/python.md is the guide.

What it adds (the typelib's own API stays available unchanged)::

    client = Tether.Client("unix:/run/user/1000/x.sock")
    client.add_method("progress", lambda params: True)
    await client.open()
    value = await client.call("subtract", {"minuend": 42, "subtrahend": 23})

    server = Tether.Server()
    server.add_method("echo", lambda params: params, Tether.Access.ANY)

    async def slow(params, invocation):           # coroutines work too
        await asyncio.sleep(1)
        return await invocation.call_peer("confirm", {"question": "OK?"})
    server.add_method("slow", slow, with_invocation=True)

The asyncio integration
-----------------------
Tether does its I/O on the GLib main context that was thread-default when
an object was made (the global default context in the main thread), so
somebody has to iterate that context while asyncio runs. PyGObject 3.42
(Debian 12) has no asyncio support of its own. We considered Debian's
python3-gbulb, which replaces the whole asyncio loop with a GLib one, and
chose not to depend on it:

* in gbulb 0.6.3 only the *first* loop of a process runs on GLib's default
  context; a second ``asyncio.run()`` silently gets a private context, so
  nothing Tether does on the default context is ever dispatched again
  (every test case and every app that restarts its loop hits this);
* it is unmaintained upstream (superseded by PyGObject 3.50's
  ``gi.events``), and it makes every ``call_soon`` a GLib source.

Instead a small selector wrapper (``_GLibSelector``) lets a standard
asyncio selector loop wait in GLib: asyncio's epoll descriptor is added to
the GLib context's poll set, each ``select()`` runs one
``GLib.MainContext.iteration()`` (bounded by asyncio's own timeout), and
then collects asyncio's ready events without blocking. GLib sources and
asyncio callbacks thus run on one thread, in one loop, with no polling and
no added latency. (PyGObject 3.42 cannot drive GLib the other way round,
asyncio's ``add_reader()`` on GLib's descriptors: its
``MainContext.query()`` is broken.)

Two ways in, one public and one not:

* ``Tether.run(main())``, ``Tether.EventLoop()`` and
  ``Tether.EventLoopPolicy`` make loops this way through public asyncio
  API only (``SelectorEventLoop(selector)``, ``asyncio.Runner``'s
  ``loop_factory``, a policy's ``new_event_loop()``).
* A loop made by anyone else (plain ``asyncio.run(main())``) is hooked
  on first use: every awaitable of this module, and ``Server.listen()``
  inside a running loop, call ``Tether.integrate_asyncio()``, which
  wraps the loop's selector in place. That reaches a private attribute,
  ``loop._selector``, which CPython's selector loops have had since
  Python 3.4 (the tests check it on the Python they run on). A loop
  without it (uvloop, a future CPython) raises ``RuntimeError`` naming
  ``Tether.run()`` instead of hanging; use the first way there.

``Server.listen()`` outside a running loop switches asyncio's default
policy to ``Tether.EventLoopPolicy`` and warns if the GLib context has not
run within two seconds (see ``Server.listen()``), so a server never waits
in silence. Loops that already iterate GLib (gbulb on the default
context, PyGObject >= 3.50's ``gi.events``) are used as they are. Without
asyncio, a ``GLib.MainLoop`` still runs everything but coroutine handlers.

Values
------
Python values become GVariants as the JSON mapping expects (see
docs/protocol.md): dict -> ``a{sv}``, list/tuple -> ``av``, str -> ``s``,
int -> ``x``, float -> ``d``, bool -> ``b``, None -> ``mv`` Nothing (JSON
null). With a ``signature``, values are built to that type instead (``v``
members still use the mapping above). A ``GLib.Variant`` is passed through
unchanged, anywhere in a value. Results come back unpacked into plain Python
values (``a{sv}`` -> dict, ``av`` -> list, Nothing -> None); pass
``raw=True`` to get the ``GLib.Variant``.

Handlers
--------
A handler is ``handler(params)`` or ``handler(params, invocation)``: it
gets the params as Python values (None when the call had none; a tuple for
a method declared with a tuple signature) and, in the second form, the
``Tether.Invocation`` too (for callbacks through
``invocation.call_peer()``, the caller's identity, the deadline). Say
which with ``add_method(..., with_invocation=True)`` (or ``False``): that
rule cannot misfire. Left out, the handler's signature decides, as in
0.1: two required positional parameters (or ``*args``) get the
invocation, fewer get the params alone; and a handler whose first
parameter is named ``invocation`` (a C-style ``handler(invocation)``,
which would be given the params) is refused with ``TypeError``. Params
come first so that the one-argument form reads naturally, and GJS
handlers take the same ``(params, invocation)``. It may be a plain
function or a coroutine function. What it returns is the answer (None
answers JSON null). To answer with an error, raise:
``Tether.RemoteCallError(code, message)`` (or any ``GLib.Error`` of the
``TETHER_REMOTE_ERROR`` domain) sends that code; another ``GLib.Error``
goes through ``Tether.Invocation.return_gerror()`` (``TETHER_ERROR`` and
GIO's cancelled / timed out map to their JSON-RPC codes, anything else
-32603); any other exception answers -32603 with the exception's text,
and is logged with its traceback on the ``Tether`` logger. A handler that
answered the invocation itself is not answered again; one that returns
``Tether.REPLY_LATER`` keeps the invocation and answers it later. A
coroutine handler keeps its invocation alive until it finishes, and is
cancelled (``asyncio.CancelledError``) when the invocation's cancellable
fires (the caller cancelled, the deadline passed, the peer left).

``Server.add_method(name, handler, access=Tether.Access.AUTHENTICATED, *,
with_invocation=None, signature=None, param_names=None,
result_signature=None)``: access
defaults to authenticated peers as in C (on ``unix:`` the kernel-verified
uid counts); ``signature``/``param_names`` declare the params
(``add_method_full``); ``result_signature`` types the answer. The
typelib's form ``add_method(name, access, handler)``, with
``handler(invocation)`` answering itself, still works. ``Server.close()``
also removes the methods added this way: a closed server cannot listen
again, and handlers that reference the server's owner would otherwise
make a cycle through C that Python's garbage collector cannot see.

Errors
------
Failures raise ``GLib.Error`` as PyGObject always does, so
``e.matches(Tether.remote_error_quark(), code)``,
``e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)`` and
``e.matches(Tether.error_quark(), Tether.Error.RESOURCE_EXHAUSTED)`` work.
Errors the peer answered with (domain ``TETHER_REMOTE_ERROR``) are raised
as ``Tether.RemoteCallError``, a subclass of ``GLib.Error`` whose ``code``
is the wire code. A deadline that passed (``G_IO_ERROR_TIMED_OUT``) is
raised as ``Tether.TimeoutError``, a subclass of both ``GLib.Error`` and
Python's ``TimeoutError``, so ``except TimeoutError`` catches it.
Cancelling the asyncio task that awaits a call cancels the call
(``rpc.cancel`` goes to the peer) and raises ``asyncio.CancelledError`` as
asyncio expects; a ``cancellable`` passed to a call makes it fail with
``G_IO_ERROR_CANCELLED`` instead.

Names: no helper is called ``connect`` (GObject signals) or ``notify``
(GObject property notification); connecting is ``open()``.
"""

import asyncio
import builtins
import inspect
import logging
import math
import selectors
import threading
import weakref
from collections.abc import Mapping

from gi.repository import GLib, GObject, Gio

from ..module import get_introspection_module
from ..overrides import override

Tether = get_introspection_module('Tether')

__all__ = []

_log = logging.getLogger('Tether')

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_INTERNAL_ERROR = -32603
_CANCELLED = -32002


# -- asyncio <-> GLib main context ---------------------------------------

class _GLibSelector(selectors.BaseSelector):
    """An asyncio selector that also runs a GLib main context.

    asyncio calls select(timeout) whenever it has nothing ready to run. We
    answer by iterating the GLib context once, blocking at most `timeout`:
    the inner selector's own descriptor (epoll) is part of GLib's poll set,
    so asyncio I/O wakes GLib up, and a GLib timeout source stands in for
    asyncio's next timer. Whatever GLib dispatches (Tether's I/O, handlers,
    async callbacks resolving futures) runs right there, on the loop's
    thread; then asyncio's ready events are collected without blocking.
    """

    def __init__(self, inner, context):
        self._inner = inner
        self._context = context
        # GLib keeps a pointer into this struct: it must outlive the poll.
        self._pollfd = GLib.PollFD(inner.fileno(), GLib.IOCondition.IN)
        context.add_poll(self._pollfd, GLib.PRIORITY_DEFAULT)

    @property
    def context(self):
        return self._context

    def register(self, fileobj, events, data=None):
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._inner.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj):
        return self._inner.get_key(fileobj)

    def get_map(self):
        return self._inner.get_map()

    def fileno(self):
        return self._inner.fileno()

    def select(self, timeout=None):
        context = self._context
        if timeout is not None and timeout <= 0:
            context.iteration(False)
        else:
            timer = None
            if timeout is not None:
                timer = GLib.Timeout(max(1, math.ceil(timeout * 1000)))
                timer.set_callback(lambda *unused: GLib.SOURCE_REMOVE)
                timer.attach(context)
            try:
                context.iteration(True)
            finally:
                if timer is not None:
                    timer.destroy()
        return self._inner.select(0)

    def close(self):
        if self._pollfd is not None:
            self._context.remove_poll(self._pollfd)
            self._pollfd = None
        self._inner.close()


class EventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop that also dispatches a GLib main context.

    `context` defaults to the thread-default context (the global default
    context in the main thread), which is where Tether objects made on this
    thread do their work.
    """

    def __init__(self, context=None):
        if context is None:
            context = GLib.MainContext.ref_thread_default()
        super().__init__(_GLibSelector(selectors.DefaultSelector(), context))


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An asyncio policy whose new loops are `Tether.EventLoop`s."""

    def new_event_loop(self):
        return EventLoop()


def run(main, *, debug=None):
    """Like `asyncio.run()`, on a `Tether.EventLoop`."""
    if hasattr(asyncio, 'Runner'):
        with asyncio.Runner(debug=debug, loop_factory=EventLoop) as runner:
            return runner.run(main)
    loop = EventLoop()                          # Python < 3.11
    try:
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _iterates_glib(loop, context):
    selector = getattr(loop, '_selector', None)
    if isinstance(selector, _GLibSelector):
        return selector.context == context
    module = type(loop).__module__
    if module.startswith('gbulb'):
        return getattr(loop, '_context', None) == context
    return module.startswith('gi.events') or module.startswith('gi._events')


def integrate_asyncio(loop=None):
    """Make an asyncio loop dispatch this thread's GLib main context.

    `loop` defaults to the running loop. Loops that already do (a
    `Tether.EventLoop`, gbulb's on the default context, PyGObject >= 3.50's)
    are left alone; a standard selector loop gets its selector wrapped in
    place. Every awaitable of these overrides does this on first use, so
    call it yourself only when GLib must be dispatched before anything is
    awaited (e.g. a program that only serves).
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    context = GLib.MainContext.ref_thread_default()
    if _iterates_glib(loop, context):
        return loop
    selector = getattr(loop, '_selector', None)
    if (selector is None or not isinstance(selector, selectors.BaseSelector)
            or not hasattr(selector, 'fileno')):
        raise RuntimeError(
            'Tether cannot drive GLib from a %s; run the program with '
            'Tether.run() or Tether.EventLoopPolicy' % type(loop).__name__)
    # asyncio's selector loops keep their selector in `_selector` (since
    # Python 3.4); we are on the loop's thread, between two of its
    # iterations, so swapping it here is safe.
    loop._selector = _GLibSelector(selector, context)
    return loop


# How long a server listening outside a running loop may wait for its
# main context to run before _serve_from_a_later_loop() warns.
_IDLE_CONTEXT_WARNING_S = 2.0


def _serve_from_a_later_loop(uri):
    """Server.listen() outside a running asyncio loop: make it serve.

    `asyncio.run()` after `listen()` makes its loop from the policy: if
    that is asyncio's default, Tether's takes its place (a subclass whose
    loops also dispatch GLib), and the program works as written. Any
    other case (another policy, a loop made before `listen()`, a thread
    that never runs a loop) cannot be fixed from here, so it is made
    loud: an idle source on the server's context notes that the context
    ran, and a timer thread warns if it did not, in time.
    """
    policy = asyncio.get_event_loop_policy()
    if type(policy) is asyncio.DefaultEventLoopPolicy:
        asyncio.set_event_loop_policy(EventLoopPolicy())
        _log.debug('listen() outside a running loop: asyncio now makes Tether.EventLoops')

    context = GLib.MainContext.ref_thread_default()
    ran = threading.Event()
    idle = GLib.Idle()

    def context_ran(*unused):
        ran.set()
        timer.cancel()
        return GLib.SOURCE_REMOVE

    def check():
        if not ran.is_set():
            idle.destroy()                  # thread-safe, as g_source_destroy() is
            _log.warning(
                'Tether.Server is listening on %s, but nothing has run its GLib main '
                'context for %g s, so nobody is served. Call listen() inside the '
                'asyncio loop (asyncio.run(main()) or Tether.run(main())), or run a '
                'GLib.MainLoop; a loop made before listen() needs '
                'Tether.integrate_asyncio(loop) (docs/python.md).',
                uri, _IDLE_CONTEXT_WARNING_S)

    timer = threading.Timer(_IDLE_CONTEXT_WARNING_S, check)
    timer.daemon = True
    idle.set_callback(context_ran)
    idle.attach(context)
    timer.start()


__all__ += ['EventLoop', 'EventLoopPolicy', 'run', 'integrate_asyncio']


# -- values ----------------------------------------------------------------

_V = GLib.VariantType.new('v')


def to_variant(value, signature=None):
    """Converts a Python value to a GLib.Variant for the wire.

    Without `signature` the JSON mapping applies (see the module doc); with
    one, the value is built to that GVariant type. A GLib.Variant is
    returned as is.
    """
    if isinstance(value, GLib.Variant):
        return value
    if signature is None:
        return _untyped(value)
    vtype = signature
    if not isinstance(vtype, GLib.VariantType):
        vtype = GLib.VariantType.new(signature)
    return _typed(vtype, value)


def from_variant(variant):
    """Unpacks a GLib.Variant into plain Python values (None stays None)."""
    if variant is None:
        return None
    return variant.unpack()


def _untyped(value):
    if value is None:
        return GLib.Variant.new_maybe(_V, None)
    if isinstance(value, GLib.Variant):
        return value
    if isinstance(value, bool):
        return GLib.Variant.new_boolean(value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise OverflowError('%d does not fit in a JSON-RPC integer (int64)' % value)
        return GLib.Variant.new_int64(value)
    if isinstance(value, float):
        return GLib.Variant.new_double(value)
    if isinstance(value, str):
        return GLib.Variant.new_string(value)
    if isinstance(value, Mapping):
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError('JSON object keys must be str, not %s' % type(key).__name__)
            entries.append(GLib.Variant.new_dict_entry(GLib.Variant.new_string(key),
                                                       GLib.Variant.new_variant(_untyped(item))))
        return GLib.Variant.new_array(GLib.VariantType.new('{sv}'), entries)
    if isinstance(value, (list, tuple)):
        return GLib.Variant.new_array(_V, [GLib.Variant.new_variant(_untyped(item))
                                           for item in value])
    raise TypeError('%s has no JSON-RPC mapping' % type(value).__name__)


def _typed(vtype, value):
    if isinstance(value, GLib.Variant):
        if value.get_type().equal(vtype):
            return value
        if vtype.equal(_V):
            return GLib.Variant.new_variant(value)
        raise TypeError('expected a value of type %s, got a GLib.Variant of type %s'
                        % (vtype.dup_string(), value.get_type_string()))
    if vtype.equal(_V):
        return GLib.Variant.new_variant(_untyped(value))
    if vtype.is_maybe():
        element = vtype.element()
        return GLib.Variant.new_maybe(element, None if value is None else _typed(element, value))
    if vtype.is_array():
        element = vtype.element()
        if element.is_dict_entry():
            if not isinstance(value, Mapping):
                raise TypeError('expected a dict for %s, got %s'
                                % (vtype.dup_string(), type(value).__name__))
            entries = [GLib.Variant.new_dict_entry(_typed(element.key(), key),
                                                   _typed(element.value(), item))
                       for key, item in value.items()]
            return GLib.Variant.new_array(element, entries)
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, '__iter__'):
            raise TypeError('expected a list for %s, got %s'
                            % (vtype.dup_string(), type(value).__name__))
        return GLib.Variant.new_array(element, [_typed(element, item) for item in value])
    if vtype.is_tuple():
        # Not first()/next(): PyGObject copies each returned type, and the
        # copy's next() has no sibling to go to.
        members = [GLib.VariantType.new(item)
                   for item in GLib.Variant.split_signature(vtype.dup_string())]
        if not isinstance(value, (list, tuple)) or len(value) != len(members):
            raise TypeError('expected a sequence of %d values for %s'
                            % (len(members), vtype.dup_string()))
        return GLib.Variant.new_tuple(*[_typed(t, item) for t, item in zip(members, value)])
    if vtype.is_basic():
        if isinstance(value, bool) and vtype.dup_string() != 'b':
            raise TypeError('expected %s, got bool' % vtype.dup_string())
        return GLib.Variant(vtype.dup_string(), value)
    raise TypeError('type %s has no JSON-RPC mapping' % vtype.dup_string())


__all__ += ['to_variant', 'from_variant']


# -- errors ----------------------------------------------------------------

_REMOTE_DOMAIN = GLib.quark_to_string(Tether.remote_error_quark())


class RemoteCallError(GLib.Error):
    """The peer answered a call with a JSON-RPC error.

    A `GLib.Error` in the `TETHER_REMOTE_ERROR` domain whose `code` is the
    wire code and `message` the peer's text, so `except GLib.Error` and
    `e.matches(Tether.remote_error_quark(), code)` keep working. Raise it
    from a handler to answer with that code: ``raise
    Tether.RemoteCallError(4001, "Out of paper")``.
    """

    def __init__(self, code, message=''):
        super().__init__(message, _REMOTE_DOMAIN, int(code))

    def __repr__(self):
        return 'Tether.RemoteCallError(%d, %r)' % (self.code, self.message)

    def copy(self):
        return RemoteCallError(self.code, self.message)


_IO_DOMAIN = GLib.quark_to_string(Gio.io_error_quark())


class TimeoutError(GLib.Error, builtins.TimeoutError):
    """A deadline passed: ``G_IO_ERROR_TIMED_OUT``, raised as a `TimeoutError`.

    A call (or `open()`) whose deadline passed with no answer raises this:
    a `GLib.Error` in GIO's domain with code `Gio.IOErrorEnum.TIMED_OUT`,
    so ``e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)`` and
    ``except GLib.Error`` keep working, and also a subclass of Python's
    `TimeoutError`, so ``except TimeoutError`` (``asyncio.TimeoutError``
    too) catches it as it catches `asyncio.wait_for()`'s. The peer's own
    -32001 (its deadline passed first) stays a `RemoteCallError`.
    """

    def __init__(self, message='', domain=_IO_DOMAIN, code=int(Gio.IOErrorEnum.TIMED_OUT)):
        GLib.Error.__init__(self, message, domain, code)

    def __repr__(self):
        return 'Tether.TimeoutError(%r)' % self.message

    def __str__(self):
        return GLib.Error.__str__(self)

    def copy(self):
        return TimeoutError(self.message)


def _domain_quark(error):
    if isinstance(error.domain, str):
        return GLib.quark_from_string(error.domain)
    return error.domain


def _is_remote(error):
    return isinstance(error, GLib.Error) and _domain_quark(error) == Tether.remote_error_quark()


def _from_gerror(error):
    if _is_remote(error) and not isinstance(error, RemoteCallError):
        return RemoteCallError(error.code, error.message)
    if (not isinstance(error, TimeoutError)
            and error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)):
        return TimeoutError(error.message)
    return error


__all__ += ['RemoteCallError', 'TimeoutError']


# -- awaitables ------------------------------------------------------------

async def _await_pair(start, finish, cancellable):
    """Runs one _async/_finish pair as an awaitable.

    `start(cancellable, callback)` begins the operation; the GAsyncResult
    is finished in the callback, on the GLib context, which resolves a
    future of the running asyncio loop. Cancelling the awaiting task
    cancels the operation (for a call: `rpc.cancel` to the peer).
    """
    loop = integrate_asyncio()
    future = loop.create_future()
    own = Gio.Cancellable()
    chained = None
    if cancellable is not None:
        if cancellable.is_cancelled():
            own.cancel()
        else:
            chained = GObject.Object.connect(cancellable, 'cancelled',
                                             lambda unused: own.cancel())

    def ready(source, result, *unused):
        # Always finish, even when nobody waits any more (cancelled task,
        # closed loop): the GAsyncResult must be consumed.
        try:
            value = finish(result)
        except GLib.Error as error:
            outcome = (future.set_exception, _from_gerror(error))
        except BaseException as error:      # a marshalling bug: never lose it
            outcome = (future.set_exception, error)
        else:
            outcome = (future.set_result, value)
        if not future.done() and not loop.is_closed():
            outcome[0](outcome[1])

    try:
        start(own, ready)
        return await future
    except asyncio.CancelledError:
        own.cancel()
        raise
    finally:
        if chained is not None:
            GObject.Object.disconnect(cancellable, chained)


class _Caller:
    """The call surface that Client and Peer share."""

    async def call(self, method, params=None, *, timeout_msec=-1, cancellable=None,
                   signature=None, raw=False):
        """Calls `method` and returns its result as Python values.

        `params` is converted with `Tether.to_variant()` (a dict gives
        named params, a list or tuple positional ones; a GLib.Variant is
        sent as is). `timeout_msec` -1 uses the default deadline.
        `raw=True` returns the GLib.Variant.
        """
        variant = None if params is None else to_variant(params, signature)
        result = await _await_pair(
            lambda c, cb: self.call_async(method, variant, timeout_msec, c, cb, None),
            self.call_finish, cancellable)
        return result if raw else from_variant(result)

    def send_notification(self, method, params=None, *, signature=None):
        """Sends a notification (no answer). Raises GLib.Error on failure."""
        variant = None if params is None else to_variant(params, signature)
        return self._gi_class.send_notification(self, method, variant)


# -- handlers --------------------------------------------------------------

REPLY_LATER = type('ReplyLater', (), {
    '__repr__': lambda self: 'Tether.REPLY_LATER',
    '__doc__': 'Returned by a handler that keeps its invocation and answers it itself.',
})()

__all__ += ['REPLY_LATER']

# Coroutine handlers in progress: asyncio keeps only weak references to tasks.
_tasks = set()


def _reply_error(invocation, method, error):
    if invocation.has_replied():
        _log.debug('%s raised after its call was answered: %s', method, error)
        return
    if isinstance(error, GLib.Error):
        if _is_remote(error):
            Tether.Invocation.return_error_literal(invocation, error.code, error.message)
        else:
            Tether.Invocation.return_gerror(invocation, error)
        return
    text = str(error) or type(error).__name__
    _log.warning('The handler of %s raised %s; answering %d',
                 method, type(error).__name__, _INTERNAL_ERROR,
                 exc_info=(type(error), error, error.__traceback__))
    Tether.Invocation.return_error_literal(invocation, _INTERNAL_ERROR, text)


def _reply_value(invocation, method, value, signature):
    if value is REPLY_LATER:
        return
    if invocation.has_replied():
        if value is not None:
            _log.debug('%s returned a value after its call was answered; dropped', method)
        return
    try:
        variant = to_variant(value, signature)
    except Exception as error:
        _reply_error(invocation, method, error)
        return
    Tether.Invocation.return_value(invocation, variant)


async def _serve(awaitable, invocation, method, signature):
    try:
        value = await awaitable
    except asyncio.CancelledError:
        if not invocation.has_replied():
            Tether.Invocation.return_error_literal(invocation, _CANCELLED, 'Cancelled')
        return
    except Exception as error:
        _reply_error(invocation, method, error)
        return
    _reply_value(invocation, method, value, signature)


def _start_coroutine(awaitable, invocation, method, signature):
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        _reply_error(invocation, method, RuntimeError(
            'the handler of %s is a coroutine, but no asyncio loop is running' % method))
        return
    task = loop.create_task(_serve(awaitable, invocation, method, signature))
    _tasks.add(task)
    cancellable = invocation.get_cancellable()
    handler_id = None
    if cancellable is not None:
        if cancellable.is_cancelled():
            task.cancel()
        else:
            task_ref = weakref.ref(task)

            def cancelled(unused):
                t = task_ref()
                if t is not None:
                    t.cancel()
            handler_id = GObject.Object.connect(cancellable, 'cancelled', cancelled)

    def done(finished):
        _tasks.discard(finished)
        if handler_id is not None:
            GObject.Object.disconnect(cancellable, handler_id)
    task.add_done_callback(done)


def _takes_invocation(handler, with_invocation):
    """Whether to call handler(params, invocation) rather than handler(params).

    `with_invocation` (True or False) decides, and nothing else. Left
    None, the signature decides as in 0.1: two required positional
    parameters (or ``*args``) take the invocation too. A handler whose
    first parameter is named ``invocation`` is refused: it is a C-style
    handler(invocation), and would silently be given the params.
    """
    if with_invocation is not None:
        if not isinstance(with_invocation, bool):
            raise TypeError('with_invocation must be True or False, not %r' % (with_invocation,))
        return with_invocation
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):         # builtins without a signature
        return False
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if positional and positional[0].name == 'invocation':
        raise TypeError(
            '%s takes the invocation first, as a C handler does, but Tether calls '
            'handler(params) or handler(params, invocation): declare it '
            'handler(params, invocation) and pass with_invocation=True '
            '(see docs/python.md, "Handlers")' % getattr(handler, '__qualname__', handler))
    required = 0
    for parameter in signature.parameters.values():
        if parameter.kind == parameter.VAR_POSITIONAL:
            return True
        if (parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
                and parameter.default is parameter.empty):
            required += 1
    return required >= 2


def _method_handler(handler, result_signature, with_invocation=None):
    if not callable(handler):
        raise TypeError('handler must be callable, not %s' % type(handler).__name__)
    takes_invocation = _takes_invocation(handler, with_invocation)

    def trampoline(invocation, *unused):
        method = invocation.get_method_name()
        try:
            params = from_variant(invocation.get_parameters())
            if takes_invocation:
                value = handler(params, invocation)
            else:
                value = handler(params)
        except Exception as error:
            _reply_error(invocation, method, error)
            return
        except BaseException as error:      # SystemExit, KeyboardInterrupt
            _reply_error(invocation, method, error)
            raise
        if inspect.isawaitable(value):
            _start_coroutine(value, invocation, method, result_signature)
        else:
            _reply_value(invocation, method, value, result_signature)
    return trampoline


def _names(param_names):
    return None if param_names is None else list(param_names)


# -- classes ---------------------------------------------------------------

class Client(_Caller, Tether.Client):
    """A connection to one Tether server (see the module doc)."""

    _gi_class = Tether.Client

    def __init__(self, uri=None, **kwargs):
        if uri is not None:
            kwargs['uri'] = uri
        super().__init__(**kwargs)

    async def open(self, cancellable=None):
        """Connects (tether_client_connect_async); returns the client."""
        await _await_pair(lambda c, cb: self.connect_async(c, cb, None),
                          self.connect_finish, cancellable)
        return self

    async def __aenter__(self):
        if not self.is_connected():
            await self.open()
        return self

    async def __aexit__(self, *exc_info):
        self.close()
        return False

    def add_method(self, name, handler, *, with_invocation=None, signature=None,
                   param_names=None, result_signature=None):
        """Adds a method the server may call back.

        `handler` may be a function or a coroutine function. With
        ``with_invocation=True`` it is called ``handler(params,
        invocation)``, with ``with_invocation=False`` ``handler(params)``;
        left out, its signature decides (see "Handlers" in the module
        doc). `signature` (a GVariant type string, e.g. ``"(xs)"``) and
        `param_names` declare the params as `add_method_full` does;
        `result_signature` types the value the handler returns.
        """
        trampoline = _method_handler(handler, result_signature, with_invocation)
        if signature is None and param_names is None:
            Tether.Client.add_method(self, name, trampoline)
        else:
            Tether.Client.add_method_full(self, name, signature, _names(param_names), trampoline)


Client = override(Client)
__all__.append('Client')


class Server(Tether.Server):
    """A Tether server (see the module doc)."""

    def listen(self, uri):
        """Listens on `uri`. A server serves only while its GLib main
        context runs, so:

        * inside a running asyncio loop, that loop is made to dispatch
          GLib (`Tether.integrate_asyncio()`): a program that only serves
          needs nothing else;
        * outside one, asyncio's default policy is replaced by
          `Tether.EventLoopPolicy`, so that a later ``asyncio.run()``
          makes a loop that dispatches GLib (a `GLib.MainLoop` needs
          nothing); and if the context has not run two seconds later
          (another policy, a loop made before, no loop at all), a
          warning on the ``Tether`` logger says that nothing is served
          and why.
        """
        result = Tether.Server.listen(self, uri)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None                 # a GLib.MainLoop, or not running yet
        if loop is not None:
            integrate_asyncio(loop)
        else:
            _serve_from_a_later_loop(uri)
        return result

    def add_method(self, name, handler, access=Tether.Access.AUTHENTICATED, *,
                   with_invocation=None, signature=None, param_names=None,
                   result_signature=None):
        """Adds a method clients may call.

        `handler` may be a function or a coroutine function. With
        ``with_invocation=True`` it is called ``handler(params,
        invocation)``, with ``with_invocation=False`` ``handler(params)``;
        left out, its signature decides (see "Handlers" in the module
        doc). `access` defaults to authenticated peers, as in C (on
        ``unix:`` the kernel-verified uid counts). `signature` and
        `param_names` declare the params as `add_method_full` does;
        `result_signature` types the value the handler returns.

        The typelib's own form, ``add_method(name, access, handler)`` with
        ``handler(invocation)`` answering the invocation itself, still
        works: an access value in second place selects it.
        """
        if isinstance(handler, Tether.Access):
            Tether.Server.add_method(self, name, handler, access)
        else:
            trampoline = _method_handler(handler, result_signature, with_invocation)
            if signature is None and param_names is None:
                Tether.Server.add_method(self, name, access, trampoline)
            else:
                Tether.Server.add_method_full(self, name, signature, _names(param_names),
                                              access, trampoline)
        self.__dict__.setdefault('_tether_methods', set()).add(name)

    def close(self):
        """Closes the server (tether_server_close) and lets go of its handlers.

        A closed server cannot listen again. Its handlers often reference
        the object that owns the server (bound methods): a cycle through C
        that Python's garbage collector cannot see, so the methods added
        here are removed, which drops those references.
        """
        Tether.Server.close(self)
        for name in self.__dict__.pop('_tether_methods', ()):
            Tether.Server.remove_method(self, name)


Server = override(Server)
__all__.append('Server')


class Peer(_Caller, Tether.Peer):
    """A connected client as the server sees it: call it back with `call()`."""

    _gi_class = Tether.Peer


Peer = override(Peer)
__all__.append('Peer')


class Invocation(Tether.Invocation):
    """One incoming call."""

    async def call_peer(self, method, params=None, *, timeout_msec=-1, cancellable=None,
                        signature=None, raw=False):
        """Calls the caller back, within this call's deadline and cancellation."""
        variant = None if params is None else to_variant(params, signature)
        result = await _await_pair(
            lambda c, cb: self.call_peer_async(method, variant, timeout_msec, c, cb, None),
            self.call_peer_finish, cancellable)
        return result if raw else from_variant(result)

    def return_value(self, value=None, signature=None):
        """Answers with `value`, converted with `Tether.to_variant()`."""
        Tether.Invocation.return_value(self, to_variant(value, signature))

    @property
    def params(self):
        """The parameters as Python values (None when the call had none)."""
        return from_variant(self.get_parameters())


Invocation = override(Invocation)
__all__.append('Invocation')
