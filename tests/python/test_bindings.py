#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tether from Python through PyGObject and Tether's overrides.

Two servers: a Tether.Server in this process with handlers written in
Python (plain functions and coroutines), and `tether serve` (the demo
service) as a subprocess. Each test runs its own asyncio loop
(asyncio.run), bounded by TEST_TIMEOUT; every wait inside is bounded too.

Run with Debian's interpreter (PyGObject is a Debian package) against a
build tree:

    GI_TYPELIB_PATH=BUILD/introspection LD_LIBRARY_PATH=BUILD/lib \\
    PYTHONPATH=SOURCE/bindings/python TETHER_TOOL=BUILD/tools/tether \\
    /usr/bin/python3 tests/python/test_bindings.py

PYTHONPATH may be left out: the source tree's overrides are then found
from this file's location. TETHER_TOOL defaults to SOURCE/_build/tools/tether.
"""

import asyncio
import contextlib
import gc
import logging
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
OVERRIDES_PATH = os.path.join(SOURCE_ROOT, 'bindings', 'python')
# Before `import gi`: gi and gi.overrides extend their __path__ from sys.path.
if OVERRIDES_PATH not in sys.path:
    sys.path.append(OVERRIDES_PATH)

import gi  # noqa: E402
gi.require_version('Tether', '1.0')
from gi.repository import GLib, Gio, Tether  # noqa: E402

TETHER_TOOL = (os.environ.get('TETHER_TOOL')
               or os.path.join(SOURCE_ROOT, '_build', 'tools', 'tether'))

STEP_TIMEOUT = 10.0     # any single wait
TEST_TIMEOUT = 30.0     # one whole test coroutine

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

REMOTE = Tether.remote_error_quark()
IO = Gio.io_error_quark()


def run(coroutine):
    """Runs one test coroutine on a fresh standard asyncio loop, bounded."""
    return asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT))


async def wait_for(predicate, what, timeout=STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        await asyncio.sleep(0.01)


VALUES = [
    0, 1, -1, INT64_MIN, INT64_MAX, 2 ** 53 + 1,
    0.5, -0.0, 1e300, -1e-300, 5e-324, 1.0,
    True, False, None,
    '', 'plain', 'é ☃ \U0001F600 "quoted" \\ \n',
    [], {}, [[]], {'': None},
    [1, 'two', 3.0, None, True, [False, {'deep': [INT64_MIN]}]],
    {'nested': {'list': [1, {'x': None}], 'empty': {}, 'max': INT64_MAX},
     'flag': False, 'pi': 3.141592653589793},
]


def assert_same(test, expected, got, where='value'):
    """Equal, and of the same Python types all the way down (True is not 1)."""
    test.assertIs(type(got), type(expected), '%s: %r came back as %r' % (where, expected, got))
    if isinstance(expected, dict):
        test.assertEqual(sorted(expected), sorted(got), where)
        for key in expected:
            assert_same(test, expected[key], got[key], '%s[%r]' % (where, key))
    elif isinstance(expected, list):
        test.assertEqual(len(expected), len(got), where)
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(test, e, g, '%s[%d]' % (where, i))
    elif isinstance(expected, float):
        test.assertEqual(repr(expected), repr(got), where)
    else:
        test.assertEqual(expected, got, where)


# -- an in-process server with Python handlers ---------------------------

class Service:
    """A Tether.Server whose methods are Python functions and coroutines."""

    def __init__(self, uri, **props):
        self.server = Tether.Server(**props)
        self.notes = []
        self.cancelled = []         # methods whose handler saw cancellation
        self.started = asyncio.Event()
        self.peers = []
        self.misbehaved = []
        s = self.server
        s.connect('peer-connected', lambda server, peer: self.peers.append(peer))
        s.connect('peer-misbehaved', self.on_misbehaved)
        s.add_method('echo', lambda params: params)
        s.add_method('aecho', self.aecho)
        s.add_method('none', lambda params: None)
        s.add_method('boom', self.boom)
        s.add_method('aboom', self.aboom)
        s.add_method('app_error', self.app_error)
        s.add_method('denied', self.denied)
        s.add_method('subtract', lambda params: params[0] - params[1],
                     signature='(xx)', param_names=['minuend', 'subtrahend'])
        s.add_method('hang', self.hang)
        s.add_method('work', self.work)
        s.add_method('ask', self.ask)
        s.add_method('note', self.note)
        s.add_method('whoami', self.whoami)
        s.add_method('manual', self.manual)
        s.add_method('later', self.later)
        s.add_method('unconvertible', lambda params: object())
        s.add_method('typed', lambda params: (params, 'x'), result_signature='(vs)')
        s.add_method('raw_c_style', Tether.Access.AUTHENTICATED,
                     lambda invocation: invocation.return_value(GLib.Variant('s', 'c-style')))
        s.add_method('anyone', lambda params: 'open to all', Tether.Access.ANY)
        s.listen(uri)

    def on_misbehaved(self, server, peer, identity, reason, details):
        self.misbehaved.append((peer, identity, reason, details))

    async def aecho(self, params, invocation):
        assert isinstance(invocation, Tether.Invocation)
        await asyncio.sleep(0)
        return {'method': invocation.get_method_name(), 'params': params}

    def boom(self, params):
        raise ValueError('kaboom %d' % params[0])

    async def aboom(self, params):
        await asyncio.sleep(0)
        raise KeyError('missing')

    def app_error(self, params):
        raise Tether.RemoteCallError(4001, 'Out of paper')

    def denied(self, params):
        raise GLib.Error.new_literal(Tether.error_quark(), 'Not you',
                                     Tether.Error.PERMISSION_DENIED)

    async def hang(self, params, invocation):
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.append(('hang', invocation.has_replied(),
                                   invocation.get_cancellable().is_cancelled()))
            raise
        return 'woke up'

    async def work(self, params, invocation):
        steps = params['steps']
        for step in range(1, steps + 1):
            answer = await invocation.call_peer('progress', {'step': step, 'of': steps})
            if answer is not True:
                raise Tether.RemoteCallError(4002, 'progress answered %r' % (answer,))
        return {'done': steps}

    async def ask(self, params, invocation):
        return await invocation.call_peer('confirm', {'question': params['question']})

    def note(self, params, invocation):
        self.notes.append((invocation.is_notification(), params))

    def whoami(self, params, invocation):
        identity = invocation.get_identity()
        return {'uid': identity.get_uid(), 'authenticated': identity.is_authenticated()}

    def manual(self, params, invocation):
        invocation.return_value(GLib.Variant('s', 'answered by hand'))
        return 'ignored'

    def later(self, params, invocation):
        def answer():
            invocation.return_value({'later': True})
            return GLib.SOURCE_REMOVE
        GLib.timeout_add(10, answer)
        return Tether.REPLY_LATER

    def close(self):
        self.server.close()


class Caller:
    """A Tether.Client whose callbacks are Python functions and coroutines."""

    def __init__(self, uri):
        self.client = Tether.Client(uri)
        self.progress = []
        self.questions = []
        self.notes = []
        self.client.add_method('progress', self.on_progress)
        self.client.add_method('confirm', self.on_confirm)
        self.client.add_method('note', lambda params: self.notes.append(params))

    def on_progress(self, params):
        self.progress.append((params['step'], params['of']))
        return True

    async def on_confirm(self, params, invocation):
        await asyncio.sleep(0.01)
        self.questions.append(params['question'])
        return params['question'].endswith('?')


class InProcessTest(unittest.TestCase):
    """Client and server in this process, both with Python handlers."""

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='tether-py-')
        self.uri = 'unix:' + os.path.join(self.tmpdir, 's.sock')

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        # Server.listen() outside a running loop sets Tether's policy: the
        # next test starts from asyncio's default again.
        asyncio.set_event_loop_policy(None)

    @contextlib.asynccontextmanager
    async def pair(self, **server_props):
        service = Service(self.uri, **server_props)
        caller = Caller(self.uri)
        try:
            self.assertIs(await caller.client.open(), caller.client)
            yield service, caller
        finally:
            caller.client.close()
            service.close()

    def assertGError(self, error, domain, code):
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(domain, code),
                        'expected %s %d, got %r' % (GLib.quark_to_string(domain), code, error))

    # -- basics

    def test_overrides_loaded(self):
        self.assertEqual(Tether.Client.__module__, 'gi.overrides.Tether')
        self.assertTrue(issubclass(Tether.RemoteCallError, GLib.Error))
        for name in ('Client', 'Server', 'Peer', 'Invocation'):
            cls = getattr(Tether, name)
            self.assertNotIn('notify', cls.__dict__)
            self.assertNotIn('connect', cls.__dict__)

    def test_open_call_close(self):
        async def main():
            async with self.pair() as (service, caller):
                client = caller.client
                self.assertTrue(client.is_connected())
                self.assertEqual(await client.call('echo', ['hi']), ['hi'])
                self.assertEqual(await client.call('anyone'), 'open to all')
                self.assertEqual(await client.call('raw_c_style'), 'c-style')
                # The plain asyncio loop was hooked to GLib once, not once per call.
                selector = asyncio.get_running_loop()._selector
                self.assertEqual(type(selector).__name__, '_GLibSelector')
                self.assertNotEqual(type(selector._inner).__name__, '_GLibSelector')
                client.close()
                self.assertFalse(client.is_connected())
                with self.assertRaises(GLib.Error) as caught:
                    await client.call('echo', ['again'])
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.NOT_CONNECTED)
        run(main())

    def test_async_context_manager_and_new(self):
        async def main():
            service = Service(self.uri)
            try:
                async with Tether.Client.new(self.uri) as client:
                    self.assertIsInstance(client, Tether.Client)
                    self.assertEqual(await client.call('echo', {'a': 1}), {'a': 1})
                self.assertFalse(client.is_connected())
            finally:
                service.close()
        run(main())

    def test_open_failure(self):
        async def main():
            client = Tether.Client('unix:' + os.path.join(self.tmpdir, 'nobody.sock'))
            with self.assertRaises(GLib.Error) as caught:
                await client.open()
            self.assertEqual(caught.exception.domain, 'g-io-error-quark')
        run(main())

    def test_tether_event_loop(self):
        async def main():
            self.assertIsInstance(asyncio.get_running_loop(), Tether.EventLoop)
            async with self.pair() as (service, caller):
                return await caller.client.call('aecho', [1])
        self.assertEqual(Tether.run(main()), {'method': 'aecho', 'params': [1]})

    def test_event_loop_policy(self):
        async def main():
            self.assertIsInstance(asyncio.get_running_loop(), Tether.EventLoop)
            async with self.pair() as (service, caller):
                return await caller.client.call('work', {'steps': 1})
        asyncio.set_event_loop_policy(Tether.EventLoopPolicy())
        try:
            self.assertEqual(run(main()), {'done': 1})
        finally:
            asyncio.set_event_loop_policy(None)

    def test_custom_access_authorize_call(self):
        async def main():
            async with self.pair() as (service, caller):
                asked = []

                def authorize(server, peer, invocation):
                    asked.append((peer, invocation.get_method_name(), invocation.params))
                    return invocation.params == ['let me in']
                service.server.add_method('guarded', lambda params: 'in', Tether.Access.CUSTOM)
                service.server.connect('authorize-call', authorize)
                self.assertEqual(await caller.client.call('guarded', ['let me in']), 'in')
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await caller.client.call('guarded', ['no'])
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.PERMISSION_DENIED)
                self.assertEqual([(m, p) for _, m, p in asked],
                                 [('guarded', ['let me in']), ('guarded', ['no'])])
                self.assertIs(asked[0][0], service.server.get_peers()[0])
        run(main())

    def test_server_close_releases_handlers(self):
        finalized = []

        async def main():
            service = Service(self.uri)     # its handlers are its bound methods
            service.server.weak_ref(lambda: finalized.append('server'))
            service.close()
            del service
            gc.collect()
        run(main())
        gc.collect()
        self.assertEqual(finalized, ['server'])

    # -- values

    def test_value_round_trips(self):
        async def main():
            async with self.pair() as (service, caller):
                for value in VALUES:
                    assert_same(self, [value], await caller.client.call('echo', [value]))
                    assert_same(self, {'v': value}, await caller.client.call('echo', {'v': value}))
                    got = await caller.client.call('aecho', (value,))
                    assert_same(self, [value], got['params'])
                assert_same(self, VALUES, await caller.client.call('echo', VALUES))
        run(main())

    def test_value_conversion(self):
        v = Tether.to_variant({'a': [1, 2.5, None, True, 's']})
        self.assertEqual(v.get_type_string(), 'a{sv}')
        self.assertEqual(Tether.to_variant([]).get_type_string(), 'av')
        self.assertEqual(Tether.to_variant(()).get_type_string(), 'av')
        self.assertEqual(Tether.to_variant(None).get_type_string(), 'mv')
        self.assertEqual(Tether.to_variant(True).get_type_string(), 'b')
        self.assertEqual(Tether.to_variant(7).get_type_string(), 'x')
        self.assertEqual(Tether.to_variant(7.0).get_type_string(), 'd')
        self.assertEqual(Tether.to_variant('s').get_type_string(), 's')
        self.assertEqual(Tether.to_variant((1, 'a'), '(xs)').get_type_string(), '(xs)')
        maybes = Tether.to_variant([1, None], 'amx')
        self.assertEqual((maybes.get_type_string(), maybes.unpack()), ('amx', [1, None]))
        self.assertEqual(Tether.to_variant({'k': [1]}, 'a{sv}').print_(False),
                         "{'k': <[<int64 1>]>}")
        raw = GLib.Variant('(ui)', (1, -2))
        self.assertIs(Tether.to_variant(raw), raw)
        self.assertEqual(Tether.to_variant({'raw': raw}).print_(False), "{'raw': <(uint32 1, -2)>}")
        self.assertEqual(Tether.from_variant(v), {'a': [1, 2.5, None, True, 's']})
        self.assertIsNone(Tether.from_variant(None))
        with self.assertRaises(OverflowError):
            Tether.to_variant(INT64_MAX + 1)
        with self.assertRaises(OverflowError):
            Tether.to_variant([INT64_MIN - 1])
        with self.assertRaises(TypeError):
            Tether.to_variant({1: 'not a string key'})
        with self.assertRaises(TypeError):
            Tether.to_variant(object())
        with self.assertRaises(TypeError):
            Tether.to_variant((1, 2, 3), '(xx)')
        with self.assertRaises(TypeError):
            Tether.to_variant(True, 'x')

    def test_raw_variants(self):
        async def main():
            async with self.pair() as (service, caller):
                client = caller.client
                self.assertEqual(await client.call('subtract', GLib.Variant('(xx)', (42, 23))), 19)
                result = await client.call('echo', GLib.Variant('av', [GLib.Variant('s', 'x')]),
                                           raw=True)
                self.assertIsInstance(result, GLib.Variant)
                self.assertEqual(result.get_type_string(), 'av')
                typed = await client.call('echo', (1, 'a'), signature='(xs)')
                self.assertEqual(typed, [1, 'a'])      # a JSON array comes back as av
                self.assertEqual(await client.call('typed', [5]), [[5], 'x'])
        run(main())

    def test_none_answers_null(self):
        async def main():
            async with self.pair() as (service, caller):
                self.assertIsNone(await caller.client.call('none'))
                nothing = await caller.client.call('none', raw=True)
                self.assertEqual(nothing.get_type_string(), 'mv')
                self.assertIsNone(nothing.get_maybe())
                # Absent params reach the handler as None.
                self.assertIsNone(await caller.client.call('echo'))
        run(main())

    def test_handler_answers_itself(self):
        async def main():
            async with self.pair() as (service, caller):
                self.assertEqual(await caller.client.call('manual'), 'answered by hand')
                self.assertEqual(await caller.client.call('later'), {'later': True})
        run(main())

    def test_declared_signature(self):
        async def main():
            async with self.pair() as (service, caller):
                client = caller.client
                named = {'minuend': 42, 'subtrahend': 23}
                self.assertEqual(await client.call('subtract', named), 19)
                self.assertEqual(await client.call('subtract', [23, 42]), -19)
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('subtract', {'minuend': 42})
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.INVALID_PARAMS)
                self.assertIn('subtrahend', caught.exception.message)
        run(main())

    # -- errors

    def test_remote_errors(self):
        async def main():
            async with self.pair() as (service, caller):
                client = caller.client
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('no_such_method')
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.METHOD_NOT_FOUND)
                self.assertEqual(caught.exception.code, -32601)
                self.assertEqual(caught.exception.domain, 'tether-remote-error-quark')

                with self.assertRaises(GLib.Error) as caught:
                    await client.call('app_error')
                self.assertIsInstance(caught.exception, Tether.RemoteCallError)
                self.assertGError(caught.exception, REMOTE, 4001)
                self.assertEqual(caught.exception.message, 'Out of paper')

                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('denied')
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.PERMISSION_DENIED)
                self.assertEqual(caught.exception.message, 'Not you')
        run(main())

    def test_handler_exceptions_answer_internal_error(self):
        async def main():
            async with self.pair() as (service, caller):
                client = caller.client
                with self.assertLogs('Tether', logging.WARNING) as logs:
                    with self.assertRaises(Tether.RemoteCallError) as caught:
                        await client.call('boom', [42])
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.INTERNAL_ERROR)
                self.assertEqual(caught.exception.message, 'kaboom 42')
                self.assertIn('boom', logs.output[0])
                self.assertIn('ValueError', logs.output[0])

                with self.assertLogs('Tether', logging.WARNING):
                    with self.assertRaises(Tether.RemoteCallError) as caught:
                        await client.call('aboom')
                self.assertGError(caught.exception, REMOTE, -32603)
                self.assertIn('missing', caught.exception.message)

                with self.assertLogs('Tether', logging.WARNING):
                    with self.assertRaises(Tether.RemoteCallError) as caught:
                        await client.call('unconvertible')
                self.assertGError(caught.exception, REMOTE, -32603)
                self.assertIn('no JSON-RPC mapping', caught.exception.message)

                # The connection is fine afterwards.
                self.assertEqual(await client.call('echo', [1]), [1])
        run(main())

    def test_local_timeout(self):
        async def main():
            async with self.pair() as (service, caller):
                # Python's TimeoutError catches it, and it is still the GLib.Error.
                with self.assertRaises(TimeoutError) as caught:
                    await caller.client.call('hang', timeout_msec=100)
                self.assertIsInstance(caught.exception, Tether.TimeoutError)
                self.assertIsInstance(caught.exception, asyncio.TimeoutError)
                self.assertNotIsInstance(caught.exception, Tether.RemoteCallError)
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.TIMED_OUT)
                self.assertIn('hang', caught.exception.message)
                # The server's deadline was the same budget: its handler was cancelled.
                await wait_for(lambda: service.cancelled, 'the handler to be cancelled')
                self.assertEqual(service.cancelled[0][0], 'hang')
                self.assertTrue(service.cancelled[0][2])
        run(main())

    def test_cancel_with_cancellable(self):
        async def main():
            async with self.pair() as (service, caller):
                cancellable = Gio.Cancellable()
                call = asyncio.ensure_future(
                    caller.client.call('hang', cancellable=cancellable))
                await asyncio.wait_for(service.started.wait(), STEP_TIMEOUT)
                cancellable.cancel()
                with self.assertRaises(GLib.Error) as caught:
                    await asyncio.wait_for(call, STEP_TIMEOUT)
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.CANCELLED)
                # rpc.cancel reached the server: the invocation was marked
                # answered and its cancellable fired, well before any deadline.
                await wait_for(lambda: service.cancelled, 'rpc.cancel to reach the server')
                self.assertEqual(service.cancelled, [('hang', True, True)])
                # A cancellable that is already cancelled fails at once.
                with self.assertRaises(GLib.Error) as caught:
                    await caller.client.call('echo', [1], cancellable=cancellable)
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.CANCELLED)
        run(main())

    def test_cancel_asyncio_task(self):
        async def main():
            async with self.pair() as (service, caller):
                task = asyncio.ensure_future(caller.client.call('hang'))
                await asyncio.wait_for(service.started.wait(), STEP_TIMEOUT)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                await wait_for(lambda: service.cancelled, 'rpc.cancel to reach the server')
                self.assertEqual(service.cancelled, [('hang', True, True)])
                self.assertEqual(await caller.client.call('echo', ['still here']), ['still here'])
        run(main())

    # -- callbacks, coroutines, notifications, peers

    def test_callbacks_answered_by_python(self):
        async def main():
            async with self.pair() as (service, caller):
                self.assertEqual(await caller.client.call('work', {'steps': 3}), {'done': 3})
                self.assertEqual(caller.progress, [(1, 3), (2, 3), (3, 3)])
                self.assertIs(await caller.client.call('ask', {'question': 'Proceed?'}), True)
                self.assertIs(await caller.client.call('ask', {'question': 'No.'}), False)
                self.assertEqual(caller.questions, ['Proceed?', 'No.'])
        run(main())

    def test_coroutine_handler(self):
        async def main():
            async with self.pair() as (service, caller):
                calls = [caller.client.call('aecho', [i]) for i in range(20)]
                results = await asyncio.gather(*calls)
                self.assertEqual([r['params'] for r in results], [[i] for i in range(20)])
        run(main())

    def test_with_invocation_decides(self):
        """with_invocation= overrides what the signature suggests, both ways."""
        async def main():
            async with self.pair() as (service, caller):
                server = service.server

                def optional(params, invocation=None):
                    return invocation.get_method_name() if invocation else 'no invocation'
                server.add_method('opt_default', optional)
                server.add_method('opt_true', optional, with_invocation=True)

                def two(params, extra):
                    return [params, extra]
                server.add_method('two_false', lambda *args: len(args), with_invocation=False)
                server.add_method('two_true', two, with_invocation=True)

                self.assertEqual(await caller.client.call('opt_default'), 'no invocation')
                self.assertEqual(await caller.client.call('opt_true'), 'opt_true')
                self.assertEqual(await caller.client.call('two_false', [1]), 1)
                with self.assertRaises(TypeError):
                    server.add_method('bad', two, with_invocation='yes')
        run(main())

    def test_c_style_handler_refused(self):
        """handler(invocation) would be given the params: refused up front."""
        def c_style(invocation):
            invocation.return_value(None)

        def c_style_with_data(invocation, user_data):
            invocation.return_value(None)
        server = Tether.Server()
        client = Tether.Client(self.uri)
        for add in (lambda h: server.add_method('m', h), lambda h: client.add_method('m', h)):
            for handler in (c_style, c_style_with_data, lambda invocation: None):
                with self.assertRaises(TypeError) as caught:
                    add(handler)
                self.assertIn('with_invocation=True', str(caught.exception))
        # Said outright, the same function is taken at its word.
        server.add_method('m', c_style, with_invocation=False)
        # The typelib's own form (access in second place) still takes C-style handlers.
        server.add_method('raw', Tether.Access.ANY, c_style)
        server.close()

    def test_notifications(self):
        async def main():
            async with self.pair() as (service, caller):
                self.assertTrue(caller.client.send_notification('note', {'n': 1}))
                await wait_for(lambda: service.notes, 'the notification')
                self.assertEqual(service.notes, [(True, {'n': 1})])
                peer = service.peers[0]
                peer.send_notification('note', [1, None])
                await wait_for(lambda: caller.notes, 'the notification to the client')
                self.assertEqual(caller.notes, [[1, None]])
        run(main())

    def test_peer_calls_and_identity(self):
        async def main():
            async with self.pair() as (service, caller):
                await wait_for(lambda: service.peers, 'peer-connected')
                peer = service.peers[0]
                self.assertIsInstance(peer, Tether.Peer)
                self.assertTrue(peer.is_tether())
                self.assertIs(await peer.call('progress', {'step': 7, 'of': 9}), True)
                self.assertEqual(caller.progress, [(7, 9)])
                self.assertIs(await peer.call('confirm', {'question': 'Sure?'}), True)
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await peer.call('nothing_here')
                self.assertGError(caught.exception, REMOTE, -32601)
                me = await caller.client.call('whoami')
                self.assertEqual(me, {'uid': os.getuid(), 'authenticated': True})
                self.assertEqual(peer.get_identity().get_uid(), os.getuid())
                self.assertEqual(peer.get_identity().get_transport(), Tether.TransportKind.UNIX)
        run(main())

    def test_reconnect_follows_a_drain(self):
        """With reconnect on, a Python client keeps calling across a drain:
        the call in flight finishes on the old connection, the next ones
        wait for the new instance on the same address and go there."""
        async def main():
            first = Service(self.uri)
            second = None
            client = Tether.Client(self.uri, reconnect=True, reconnect_min_delay=10,
                                   reconnect_max_delay=50)
            events = []
            client.connect('going-away', lambda c, ms: events.append('going-away'))
            client.connect('reconnected', lambda c: events.append('reconnected'))
            client.connect('disconnected', lambda c, e: events.append('disconnected'))
            drained = []
            try:
                self.assertTrue(client.props.reconnect)

                async def slow(params):
                    await asyncio.sleep(0.3)
                    return 'slow'
                first.server.add_method('slow', slow)
                await client.open()
                self.assertEqual(await client.call('echo', ['before']), ['before'])
                slow = asyncio.ensure_future(client.call('slow'))
                await asyncio.sleep(0.05)
                first.server.shutdown_async(10000, None,
                                            lambda s, r, d: drained.append(s.shutdown_finish(r)),
                                            None)
                await wait_for(lambda: 'going-away' in events, 'going-away')
                waiting = asyncio.ensure_future(client.call('echo', ['during'],
                                                            timeout_msec=10000))
                await asyncio.sleep(0.05)
                self.assertFalse(waiting.done())
                second = Service(self.uri)
                self.assertEqual(await waiting, ['during'])
                self.assertEqual(await slow, 'slow')
                for i in range(20):
                    self.assertEqual(await client.call('echo', [i]), [i])
                await wait_for(lambda: drained == [True], 'the drain')
                self.assertEqual(events, ['going-away', 'reconnected'])
                self.assertTrue(client.is_connected())
            finally:
                client.close()
                first.close()
                if second is not None:
                    second.close()
        run(main())

    def test_statistics(self):
        async def main():
            async with self.pair() as (service, caller):
                for i in range(5):
                    await caller.client.call('echo', [i])
                await caller.client.call('work', {'steps': 2})
                stats = service.server.get_statistics()
                self.assertIsInstance(stats, Tether.Statistics)
                self.assertGreaterEqual(stats.calls_received, 6)
                self.assertGreaterEqual(stats.calls_sent, 2)
                self.assertEqual(stats.connections, 1)
                self.assertEqual(stats.pending_calls, 0)
                self.assertGreater(stats.bytes_received, 0)
                self.assertGreater(stats.bytes_sent, 0)
                for field in ('invocations', 'timed_out', 'rejected', 'unsolicited_responses',
                              'invalid_messages', 'bytes_queued', 'strikes', 'peers_cut_off'):
                    self.assertIsInstance(getattr(stats, field), int, field)
                mine = caller.client.get_statistics()
                self.assertGreaterEqual(mine.calls_sent, 6)
                self.assertEqual(mine.calls_received, 2)
                peer_stats = service.peers[0].get_statistics()
                self.assertGreaterEqual(peer_stats.calls_received, 6)
                self.assertEqual(service.peers[0].get_n_pending_calls(), 0)
        run(main())

    def test_peer_misbehaved_handshake_timeout(self):
        async def main():
            async with self.pair(handshake_timeout=200) as (service, caller):
                path = self.uri[len('unix:'):]
                reader, writer = await asyncio.open_unix_connection(path)
                try:
                    await wait_for(lambda: service.misbehaved, 'peer-misbehaved')
                finally:
                    writer.close()
                peer, identity, reason, details = service.misbehaved[0]
                self.assertIsNone(peer)
                self.assertEqual(reason, Tether.Misbehavior.HANDSHAKE_TIMEOUT)
                self.assertEqual(identity.get_uid(), os.getuid())
                self.assertIn('200 ms', details)
        run(main())

    def test_peer_misbehaved_message_too_large(self):
        async def main():
            async with self.pair(max_message_size=1024) as (service, caller):
                await wait_for(lambda: service.peers, 'peer-connected')
                with self.assertRaises(GLib.Error) as caught:
                    await caller.client.call('echo', ['x' * 4096])
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.CONNECTION_CLOSED)
                await wait_for(lambda: service.misbehaved, 'peer-misbehaved')
                peer, identity, reason, details = service.misbehaved[0]
                self.assertIs(peer, service.peers[0])
                self.assertEqual(reason, Tether.Misbehavior.MESSAGE_TOO_LARGE)
                self.assertGreaterEqual(service.server.get_statistics().peers_cut_off, 1)
        run(main())

    def test_serving_only_to_a_c_client(self):
        """Nothing here awaits Tether: listen() alone makes asyncio dispatch
        GLib. The client is the C `tether call`, which answers progress."""
        async def main():
            service = Service(self.uri)
            try:
                proc = await asyncio.create_subprocess_exec(
                    TETHER_TOOL, 'call', self.uri, 'work', '{"steps": 2}',
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                try:
                    out, err = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
                    raise
            finally:
                service.close()
            return proc.returncode, out.decode(), err.decode()
        returncode, out, err = run(main())
        self.assertEqual(returncode, 0, err)
        self.assertIn('"done"', out)
        self.assertIn('progress: step 2 of 2', err)

    def test_private_selector_still_there(self):
        """integrate_asyncio() relies on CPython's SelectorEventLoop._selector;
        this Python must still have it, or the limit docs/python.md names
        has been reached."""
        loop = asyncio.SelectorEventLoop()
        try:
            self.assertIsInstance(loop._selector, selectors.BaseSelector)
        finally:
            loop.close()

    def test_integration_refuses_a_loop_it_cannot_drive(self):
        """A loop without a selector (uvloop, a future CPython): a clear
        RuntimeError naming the public way, not a hang."""
        class Opaque(asyncio.SelectorEventLoop):
            def __init__(self):
                super().__init__()
                self._hidden, self._selector = self._selector, None

            def close(self):
                self._selector = self._hidden
                super().close()
        loop = Opaque()
        try:
            with self.assertRaises(RuntimeError) as caught:
                Tether.integrate_asyncio(loop)
            self.assertIn('Tether.run()', str(caught.exception))
        finally:
            loop.close()

    def listen_outside_a_loop(self, then, timeout=STEP_TIMEOUT):
        """Runs a program that listens before any loop runs, then does
        `then`; a `tether call echo` tries to reach it. Returns whether
        it was served and the program's stderr."""
        program = textwrap.dedent('''
            import asyncio, os, subprocess, sys, time
            import gi
            gi.require_version('Tether', '1.0')
            from gi.repository import GLib, Tether
            uri, then, tool = sys.argv[1:]
            server = Tether.Server()
            server.add_method('echo', lambda params: params, Tether.Access.ANY)
            server.listen(uri)
            async def call():
                proc = await asyncio.create_subprocess_exec(
                    tool, 'call', '--timeout', '2000', uri, 'echo', '["hi"]',
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                out, _ = await proc.communicate()
                print('served' if b'hi' in out else 'not served', flush=True)
            if then == 'asyncio.run':
                asyncio.run(call())
            elif then == 'GLib.MainLoop':
                loop = GLib.MainLoop()
                proc = subprocess.Popen([tool, 'call', uri, 'echo', '["hi"]'],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                GLib.child_watch_add(GLib.PRIORITY_DEFAULT, proc.pid,
                                     lambda *a: loop.quit())
                loop.run()
                print('served' if b'hi' in proc.stdout.read() else 'not served', flush=True)
            elif then == 'nothing':
                time.sleep(4)     # the warning comes after 2 s
            server.close()
        ''')
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [OVERRIDES_PATH] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
        proc = subprocess.run([sys.executable, '-c', program, self.uri, then, TETHER_TOOL],
                              capture_output=True, text=True, timeout=timeout, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return 'served' in proc.stdout.split(), proc.stderr

    def test_listen_before_asyncio_run_serves(self):
        """listen(), then asyncio.run() of something that never awaits
        Tether: still served (Tether's policy made the loop)."""
        served, err = self.listen_outside_a_loop('asyncio.run')
        self.assertTrue(served, err)
        self.assertNotIn('nobody is served', err)

    def test_listen_then_glib_main_loop_is_quiet(self):
        served, err = self.listen_outside_a_loop('GLib.MainLoop')
        self.assertTrue(served, err)
        self.assertNotIn('nobody is served', err)

    def test_listen_with_nothing_running_warns(self):
        served, err = self.listen_outside_a_loop('nothing')
        self.assertIn('nobody is served', err)
        self.assertIn(self.uri, err)

    def test_coroutine_handler_without_asyncio(self):
        """Under a plain GLib.MainLoop a coroutine handler cannot run: -32603."""
        service = Service(self.uri)
        client = Tether.Client(self.uri)
        loop = GLib.MainLoop()
        outcome = {}

        def give_up():
            outcome['gave up'] = True
            loop.quit()
            return GLib.SOURCE_REMOVE

        def called(source, result):
            try:
                outcome['value'] = source.call_finish(result)
            except GLib.Error as error:
                outcome['error'] = error
            loop.quit()

        def connected(source, result):
            source.connect_finish(result)
            source.call_async('aecho', None, -1, None, called)

        timer = GLib.timeout_add(int(STEP_TIMEOUT * 1000), give_up)
        client.connect_async(None, connected)
        with self.assertLogs('Tether', logging.WARNING):
            loop.run()
        if 'gave up' not in outcome:
            GLib.source_remove(timer)
        client.close()
        service.close()
        self.assertNotIn('gave up', outcome)
        self.assertTrue(outcome['error'].matches(REMOTE, -32603))
        self.assertIn('no asyncio loop', outcome['error'].message)


# -- `tether serve` as a subprocess ----------------------------------------

class ToolService:
    """`tether serve unix:DIR/x.sock` (the demo service) as a subprocess."""

    def __init__(self):
        if not os.access(TETHER_TOOL, os.X_OK):
            raise RuntimeError('no tether tool at %s (set TETHER_TOOL)' % TETHER_TOOL)
        self.tmpdir = tempfile.mkdtemp(prefix='tether-py-serve-')
        self.uri = 'unix:' + os.path.join(self.tmpdir, 'x.sock')
        self.stderr_path = os.path.join(self.tmpdir, 'stderr.log')
        self.stderr = open(self.stderr_path, 'wb')
        self.proc = subprocess.Popen([TETHER_TOOL, 'serve', self.uri],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            line = self.lines.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            line = None
        if line != 'listening on ' + self.uri:
            self.stop()
            raise RuntimeError('tether serve did not start: %r; stderr: %s' % (line, self.log()))

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode('utf-8', 'replace').rstrip('\n'))

    def log(self):
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STEP_TIMEOUT)
        self.stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class ToolServerTest(unittest.TestCase):
    """Python clients and handlers against the C demo service."""

    @classmethod
    def setUpClass(cls):
        cls.service = ToolService()

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    @contextlib.asynccontextmanager
    async def client(self):
        caller = Caller(self.service.uri)
        await caller.client.open()
        try:
            yield caller
        finally:
            caller.client.close()

    def assertGError(self, error, domain, code):
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(domain, code),
                        'expected %s %d, got %r' % (GLib.quark_to_string(domain), code, error))

    def test_work_with_progress(self):
        async def main():
            async with self.client() as caller:
                result = await caller.client.call('work', {'steps': 3, 'delay_ms': 10})
                self.assertEqual(result, {'done': 3})
                self.assertEqual(caller.progress, [(1, 3), (2, 3), (3, 3)])
                self.assertEqual(await caller.client.call('work', [2, 1]), {'done': 2})
        run(main())

    def test_ask_with_coroutine_confirm(self):
        async def main():
            async with self.client() as caller:
                self.assertIs(await caller.client.call('ask', {'question': 'Delete it?'}), True)
                self.assertIs(await caller.client.call('ask', ['Not a question']), False)
                self.assertEqual(caller.questions, ['Delete it?', 'Not a question'])
        run(main())

    def test_subtract_and_values(self):
        async def main():
            async with self.client() as caller:
                client = caller.client
                named = {'minuend': 42, 'subtrahend': 23}
                self.assertEqual(await client.call('subtract', named), 19)
                self.assertEqual(await client.call('subtract', [42, 23]), 19)
                self.assertEqual(await client.call('subtract', GLib.Variant('(xx)', (23, 42))), -19)
                self.assertEqual(await client.call('subtract', (INT64_MAX, 1), signature='(xx)'),
                                 INT64_MAX - 1)
                self.assertEqual(await client.call('sum', [1, 2, 3.5]), 6.5)
                self.assertEqual(await client.call('get_data'), ['hello', 5])
                for value in VALUES:
                    assert_same(self, [value], await client.call('echo', [value]))
                    assert_same(self, {'k': value}, await client.call('echo', {'k': value}))
                me = await client.call('whoami')
                self.assertEqual(me['transport'], 'unix')
                self.assertEqual(me['uid'], os.getuid())
                self.assertIs(me['tether'], True)
        run(main())

    def test_errors(self):
        async def main():
            async with self.client() as caller:
                client = caller.client
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('frobnicate')
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.METHOD_NOT_FOUND)
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('work', {'steps': 'three'})
                self.assertGError(caught.exception, REMOTE, Tether.RemoteError.INVALID_PARAMS)
                self.assertIn('steps', caught.exception.message)
                with self.assertRaises(Tether.RemoteCallError) as caught:
                    await client.call('subtract', {'minuend': 1})
                self.assertGError(caught.exception, REMOTE, -32602)
                with self.assertRaises(TimeoutError) as caught:
                    await client.call('sleep', {'ms': 5000}, timeout_msec=100)
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.TIMED_OUT)
        run(main())

    def test_cancel_reaches_the_service(self):
        async def main():
            async with self.client() as caller:
                cancellable = Gio.Cancellable()
                GLib.timeout_add(100, lambda: cancellable.cancel() or GLib.SOURCE_REMOVE)
                with self.assertRaises(GLib.Error) as caught:
                    await caller.client.call('sleep', {'ms': 5000}, cancellable=cancellable)
                self.assertGError(caught.exception, IO, Gio.IOErrorEnum.CANCELLED)
                await wait_for(lambda: '(the client cancelled)' in self.service.log(),
                               "the service's log of rpc.cancel")

                task = asyncio.ensure_future(caller.client.call('sleep', {'ms': 4000}))
                await asyncio.sleep(0.1)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                await wait_for(lambda: self.service.log().count('(the client cancelled)') == 2,
                               "the service's log of the second rpc.cancel")
                stats = caller.client.get_statistics()
                self.assertEqual(stats.pending_calls, 0)
                self.assertGreaterEqual(stats.calls_sent, 2)
        run(main())


if __name__ == '__main__':
    unittest.main(verbosity=2)
