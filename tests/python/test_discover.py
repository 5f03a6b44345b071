#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpc.discover (issue #12) from outside the library.

* The demo service (`tether serve`) describes itself, and its document is
  valid OpenRPC: it validates against the official meta-schema
  (tests/openrpc/, vendored with its licence), with Debian's
  python3-jsonschema.
* The document says what the service accepts: for every demo method,
  example params the server accepts are accepted by the document's
  schemas, and params the document's schemas refuse are refused by the
  server. The params are judged the way an OpenRPC client would
  (paramStructure, params, required; x-tether-params where OpenRPC cannot
  say it), and sent by a plain JSON-RPC client that knows nothing of
  Tether.
* A caller is shown only what it may call; Python describes methods of
  its own and reads a service's description.

Run with Debian's interpreter against a build tree (see test_bindings.py):

    GI_TYPELIB_PATH=BUILD/introspection LD_LIBRARY_PATH=BUILD/lib \\
    TETHER_TOOL=BUILD/tools/tether /usr/bin/python3 tests/python/test_discover.py
"""

import asyncio
import copy
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import jsonschema
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
OVERRIDES_PATH = os.path.join(SOURCE_ROOT, 'bindings', 'python')
if OVERRIDES_PATH not in sys.path:
    sys.path.append(OVERRIDES_PATH)

import gi  # noqa: E402
gi.require_version('Tether', '1.0')
from gi.repository import GLib, Tether  # noqa: E402

TETHER_TOOL = (os.environ.get('TETHER_TOOL')
               or os.path.join(SOURCE_ROOT, '_build', 'tools', 'tether'))
SCHEMAS = os.path.join(SOURCE_ROOT, 'tests', 'openrpc')

STEP_TIMEOUT = 10.0
TEST_TIMEOUT = 60.0

INT64_MAX = (1 << 63) - 1

DEMO_METHODS = ['ask', 'echo', 'get_data', 'notify_hello', 'sleep', 'subtract', 'sum',
                'update', 'whoami', 'work']

ABSENT = object()   # a request without "params"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT))


# -- the official meta-schema ---------------------------------------------------

def openrpc_validator():
    """OpenRPC 1.3's schema, whose JSON Schema part is the json-schema-tools
    meta-schema it refers to by URL: both from tests/openrpc, offline."""
    with open(os.path.join(SCHEMAS, 'openrpc-1.3.schema.json')) as f:
        openrpc = json.load(f)
    with open(os.path.join(SCHEMAS, 'json-schema-tools.meta-schema.json')) as f:
        meta = json.load(f)
    store = {
        'https://meta.json-schema.tools': meta,
        'https://meta.json-schema.tools/': meta,
        openrpc['$id']: openrpc,
    }
    resolver = jsonschema.RefResolver.from_schema(openrpc, store=store)
    return jsonschema.Draft7Validator(openrpc, resolver=resolver)


def schema_accepts(schema, value):
    """Draft-07, OpenRPC's dialect (see docs/json.md)."""
    return jsonschema.Draft7Validator(schema).is_valid(value)


def openrpc_accepts(method, params):
    """Whether @method's description admits @params (ABSENT, a list, a
    dict, or anything else), read as an OpenRPC client reads it."""
    if 'x-tether-params' in method:
        # OpenRPC cannot say it: the schema of the whole params member.
        # Left out, params are fine only for an undeclared method.
        if params is ABSENT:
            return 'x-tether-signature' not in method
        return schema_accepts(method['x-tether-params'], params)
    structure = method.get('paramStructure', 'either')
    descriptors = method['params']
    names = [d['name'] for d in descriptors]
    required = [d.get('required', False) for d in descriptors]
    if params is ABSENT:
        return not any(required)
    if isinstance(params, list):
        if structure == 'by-name' or len(params) > len(descriptors):
            return False
        if any(required[len(params):]):
            return False
        return all(schema_accepts(d['schema'], v) for d, v in zip(descriptors, params))
    if isinstance(params, dict):
        if structure == 'by-position' and descriptors:
            return False
        if any(k not in names for k in params):
            return False
        if any(r and n not in params for n, r in zip(names, required)):
            return False
        return all(schema_accepts(d['schema'], params[d['name']])
                   for d in descriptors if d['name'] in params)
    return False


# -- `tether serve`, and a plain JSON-RPC client -----------------------------------

class ToolServer:
    """`tether serve ws://127.0.0.1:0 unix:DIR/d.sock` as a subprocess."""

    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix='tether-discover-')
        self.unix_uri = 'unix:' + os.path.join(self.tmpdir, 'd.sock')
        self.stderr = open(os.path.join(self.tmpdir, 'stderr.log'), 'w+b')
        self.proc = subprocess.Popen([TETHER_TOOL, 'serve', 'ws://127.0.0.1:0', self.unix_uri],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ws_uri = None
        deadline = time.monotonic() + STEP_TIMEOUT
        try:
            seen = set()
            while len(seen) < 2:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
                if line is None:
                    raise RuntimeError('tether serve exited: ' + self.stderr_text())
                if line.startswith('listening on '):
                    uri = line[len('listening on '):]
                    seen.add(uri)
                    if uri.startswith('ws://'):
                        self.ws_uri = uri
        except BaseException:
            self.stop()
            raise

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode('utf-8', 'replace').rstrip('\n'))
        self.lines.put(None)

    def stderr_text(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode('utf-8', 'replace')[-4000:]

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


def plain_connect(uri):
    """A WebSocket without Tether's subprotocol: a plain JSON-RPC peer."""
    if uri.startswith('unix:'):
        return websockets.unix_connect(uri[len('unix:'):], 'ws://localhost/', max_size=None)
    return websockets.connect(uri, max_size=None)


async def plain_call(ws, method, params=ABSENT, request_id=1):
    """Sends one request and returns its response; callbacks the server
    makes meanwhile (progress, confirm) are answered true."""
    request = {'jsonrpc': '2.0', 'method': method, 'id': request_id}
    if params is not ABSENT:
        request['params'] = params
    await ws.send(json.dumps(request))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
        if 'method' in message:
            if 'id' in message:
                await ws.send(json.dumps({'jsonrpc': '2.0', 'id': message['id'], 'result': True}))
            continue
        # A malformed request (params neither an array nor an object) is
        # answered with id null; requests here go one at a time.
        if message.get('id') == request_id or ('error' in message and message.get('id') is None):
            return message


async def plain_discover(uri):
    async with plain_connect(uri) as ws:
        return await plain_call(ws, 'rpc.discover')


SERVER = None


def setUpModule():
    global SERVER
    SERVER = ToolServer()


def tearDownModule():
    if SERVER is not None:
        SERVER.stop()


# -- the demo service ---------------------------------------------------------------

# method → [(params, whether the service takes them)]. Only what the
# declared signatures decide: checks a handler makes beyond them (work's
# 0..1000 steps, sum's numbers) are its own, and not in any schema.
EXAMPLES = {
    'subtract': [([42, 23], True), ({'minuend': 42, 'subtrahend': 23}, True),
                 ({'subtrahend': 23, 'minuend': 42}, True), ([INT64_MAX, 0], True),
                 ([42], False), ([42, '23'], False), ({'minuend': 42}, False),
                 ({'minuend': 42, 'subtrahend': 23, 'x': 1}, False), ([1.5, 2], False),
                 ([INT64_MAX + 1, 0], False), ({}, False), (ABSENT, False), ([1, 2, 3], False),
                 ('42', False)],
    'work': [({}, True), ([], True), ([0], True), ([0, 0], True), ({'steps': 1}, True),
             ({'steps': 1, 'delay_ms': 0}, True), ([None, 0], True), ({'delay_ms': 0}, True),
             (ABSENT, True), (['3'], False), ([1, 2, 3], False), ({'steps': 'three'}, False),
             ({'delay': 1}, False), ([True], False), ({'steps': [1]}, False)],
    'sleep': [([0], True), ({'ms': 0}, True), ({}, True), (ABSENT, True), ([None], True),
              ({'ms': 'x'}, False), ([0, 1], False), ({'seconds': 1}, False), ([0.5], False)],
    'ask': [(['ok?'], True), ({'question': 'ok?'}, True), ([''], True),
            ([], False), ({}, False), ([1], False), ({'question': None}, False),
            (ABSENT, False), (['a', 'b'], False), ({'q': 'ok?'}, False)],
    'sum': [([1, 2, 4], True), ([], True), ([1.5, 2], True),
            ({'a': 1}, False), (ABSENT, False), ({}, False)],
    'get_data': [(ABSENT, True), ([], True), ({}, True), ([1], False), ({'a': 1}, False)],
    'whoami': [(ABSENT, True), ([], True), ({}, True), ([None], False), ({'a': 1}, False)],
    'echo': [([1], True), ({'a': 1}, True), (ABSENT, True), ([], True), ({}, True),
             (5, False), ('x', False), (None, False)],
    'update': [([1, 2, 3, 4, 5], True), ({'a': 1}, True), (ABSENT, True), (7, False)],
    'notify_hello': [([7], True), ([], True), (True, False)],
}


def service_takes(response):
    """A request the service refused for its params is answered -32602
    (params that do not fit), -32600 (params that are not an array or an
    object) or -32700 (an integer beyond int64 is not JSON to Tether)."""
    return response.get('error', {}).get('code') not in (-32602, -32600, -32700)


class DemoDocument(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        response = run(plain_discover(SERVER.ws_uri))
        assert 'result' in response, response
        cls.doc = response['result']
        cls.methods = {m['name']: m for m in cls.doc['methods']}
        cls.callbacks = {m['name']: m for m in cls.doc.get('x-tether-callbacks', [])}

    def test_validates_against_the_openrpc_meta_schema(self):
        validator = openrpc_validator()
        errors = ['%s at %s' % (e.message[:200], list(e.absolute_path))
                  for e in validator.iter_errors(self.doc)]
        self.assertEqual(errors, [])
        self.assertEqual(self.doc['openrpc'], '1.3.2')
        # The check can fail: a method with a member OpenRPC does not
        # have, and a schema that is not one, are both caught.
        broken = copy.deepcopy(self.doc)
        broken['methods'][0]['returns'] = 'nothing'
        broken['methods'][1]['params'] = [{'name': 'x', 'schema': {'type': 'nonsense'}}]
        self.assertEqual(len(list(validator.iter_errors(broken))), 2)

    def test_describes_every_method_and_callback(self):
        self.assertEqual(sorted(self.methods), DEMO_METHODS)
        for name, method in self.methods.items():
            self.assertTrue(method.get('summary'), name)
            self.assertEqual(method['x-tether-access'], 'any', name)
            self.assertEqual(method['x-tether-deadline-ms'], {'default': 30000, 'maximum': 600000})
        self.assertEqual(self.methods['work']['x-tether-callbacks'], ['progress'])
        self.assertEqual(self.methods['ask']['x-tether-callbacks'], ['confirm'])
        self.assertEqual([(p['name'], p.get('required', False))
                          for p in self.methods['work']['params']],
                         [('steps', False), ('delay_ms', False)])
        self.assertEqual(self.methods['subtract']['x-tether-signature'], '(xx)')
        self.assertEqual(self.methods['get_data']['result']['schema']['items'],
                         [{'type': 'string'},
                          {'type': 'integer', 'minimum': -(1 << 63), 'maximum': INT64_MAX}])

        self.assertEqual(sorted(self.callbacks), ['confirm', 'progress'])
        progress = self.callbacks['progress']
        self.assertEqual(progress['x-tether-made-by'], ['work'])
        self.assertEqual([p['name'] for p in progress['params']], ['step', 'of'])
        self.assertEqual(progress['x-tether-deadline-ms'], {'default': 10000, 'maximum': 60000})
        self.assertEqual(self.callbacks['confirm']['x-tether-made-by'], ['ask'])
        self.assertEqual(self.doc['info']['title'], 'Tether demo service')
        self.assertEqual(sorted(s['url'] for s in self.doc['servers']),
                         sorted([SERVER.ws_uri, SERVER.unix_uri]))

    def test_progress_params_fit_what_the_service_sends(self):
        # The callbacks' params as the client would declare them: what the
        # service really sends must fit (checked on a real work call).
        async def main():
            async with plain_connect(SERVER.ws_uri) as ws:
                await ws.send(json.dumps({'jsonrpc': '2.0', 'method': 'work',
                                          'params': {'steps': 2, 'delay_ms': 0}, 'id': 'w'}))
                seen = 0
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
                    if msg.get('method') == 'progress':
                        self.assertTrue(openrpc_accepts(self.callbacks['progress'],
                                                        msg['params']), msg)
                        seen += 1
                        await ws.send(json.dumps({'jsonrpc': '2.0', 'id': msg['id'],
                                                  'result': True}))
                    elif msg.get('id') == 'w':
                        self.assertEqual(msg['result'], {'done': 2})
                        self.assertTrue(schema_accepts(self.methods['work']['result']['schema'],
                                                       msg['result']))
                        break
                self.assertEqual(seen, 2)
        run(main())

    def test_examples_agree_with_the_service(self):
        self.assertEqual(sorted(EXAMPLES), DEMO_METHODS)

        async def main():
            disagreements = []
            async with plain_connect(SERVER.ws_uri) as ws:
                request_id = 100
                for name, cases in EXAMPLES.items():
                    for params, expected in cases:
                        request_id += 1
                        response = await plain_call(ws, name, params, request_id)
                        server = service_takes(response)
                        described = openrpc_accepts(self.methods[name], params)
                        if not (server == described == expected):
                            disagreements.append((name, params, expected, server, described,
                                                  response.get('error')))
                        if server and 'result' in response and \
                                self.methods[name]['result']['schema'] != {}:
                            self.assertTrue(schema_accepts(self.methods[name]['result']['schema'],
                                                           response['result']), (name, response))
            self.assertEqual(disagreements, [],
                             '(method, params, expected, service takes them, '
                             'the description takes them, error)')
        run(main())


# -- an in-process service: what each caller is shown, Python's own descriptions ---

class PythonService(unittest.TestCase):

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix='tether-discover-py-')

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def make_server(self, discover_access=Tether.Access.ANY):
        server = Tether.Server(service_title='Python service', service_version='2.0',
                               discover_access=discover_access)
        server.add_method('open', lambda params: 'open', Tether.Access.ANY,
                          signature='(smx)', param_names=['name', 'count'])
        server.add_method('secret', lambda params: 'secret', Tether.Access.AUTHENTICATED)
        server.add_method('custom', lambda params: 'custom', Tether.Access.CUSTOM)

        info = Tether.MethodInfo.new('open')
        info.set_summary('Open to anyone')
        info.set_param_description('count', 'how many')
        info.set_result('s', 'a word')
        info.add_callback('tick')
        self.assertTrue(server.describe_method(info))
        secret = Tether.MethodInfo.new('secret')
        secret.add_callback('whisper')
        self.assertTrue(server.describe_method(secret))
        for name in ('tick', 'whisper'):
            callback = Tether.MethodInfo.new(name)
            callback.set_params('(x)', ['n'])
            server.add_callback_info(callback)
        self.assertFalse(server.describe_method(Tether.MethodInfo.new('missing')))
        return server

    def test_each_caller_sees_what_it_may_call(self):
        async def main():
            server = self.make_server()
            unix_uri = 'unix:' + os.path.join(self.tmpdir, 'p.sock')
            server.listen('ws://127.0.0.1:0')
            server.listen(unix_uri)
            ws_uri = [u for u in server.get_uris() if u.startswith('ws:')][0]
            try:
                # Anonymous over ws://: only what any peer may call.
                client = Tether.Client(ws_uri)
                await client.open()
                doc = await client.call('rpc.discover')
                client.close()
                self.assertEqual([m['name'] for m in doc['methods']], ['open'])
                self.assertEqual([c['name'] for c in doc['x-tether-callbacks']], ['tick'])
                self.assertEqual(openrpc_validator().is_valid(doc), True)
                plain = (await plain_discover(ws_uri))['result']
                self.assertEqual(plain, doc)

                # Authenticated (the kernel's uid on unix:): everything.
                client = Tether.Client(unix_uri)
                await client.open()
                doc = await client.call('rpc.discover')
                client.close()
                self.assertEqual([m['name'] for m in doc['methods']], ['custom', 'open', 'secret'])
                self.assertEqual([c['name'] for c in doc['x-tether-callbacks']],
                                 ['tick', 'whisper'])

                opened = doc['methods'][1]
                self.assertEqual(opened['summary'], 'Open to anyone')
                self.assertEqual(opened['params'][1],
                                 {'name': 'count', 'description': 'how many',
                                  'schema': {'anyOf': [{'type': 'null'},
                                                       {'type': 'integer',
                                                        'minimum': -(1 << 63),
                                                        'maximum': INT64_MAX}]}})
                self.assertEqual(opened['result'], {'name': 'result', 'description': 'a word',
                                                    'schema': {'type': 'string'}})
                self.assertEqual(doc['info'], {'title': 'Python service', 'version': '2.0'})
            finally:
                server.close()
        run(main())

    def test_who_may_ask(self):
        async def main():
            server = self.make_server(discover_access=Tether.Access.AUTHENTICATED)
            server.listen('ws://127.0.0.1:0')
            ws_uri = server.get_uris()[0]
            try:
                # A plain client on ws:// is anonymous: refused like any
                # method for authenticated peers.
                response = await plain_discover(ws_uri)
                self.assertEqual(response['error']['code'], -32004, response)
                client = Tether.Client(ws_uri)
                await client.open()
                with self.assertRaises(GLib.Error) as caught:
                    await client.call('rpc.discover')
                self.assertTrue(caught.exception.matches(Tether.remote_error_quark(), -32004))
                client.close()
            finally:
                server.close()
        run(main())


# -- the tool: tether describe, and tether call's check -------------------------

async def tool(*args):
    """Runs the tether tool; returns (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(TETHER_TOOL, *args,
                                                stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


class Tool(unittest.TestCase):

    def test_describe_summarises_the_demo(self):
        status, out, err = run(tool('describe', SERVER.unix_uri))
        self.assertEqual(status, 0, err)
        lines = [line.strip() for line in out.splitlines()]
        self.assertEqual(lines[0], 'Tether demo service, version %s (OpenRPC 1.3.2)'
                         % Tether.VERSION_S)
        for expected in ['work(steps: x?, delay_ms: x?) -> a{sv}',
                         'subtract(minuend: x, subtrahend: x) -> x',
                         'echo(...) -> any',
                         'sum(av) -> any',
                         'calls back: progress',
                         'calls back: confirm',
                         'steps: how many steps, 0 to 1000 (default 3)',
                         'any peer; deadline 30000 ms, at most 600000 ms',
                         'progress(step: x, of: x) -> any',
                         'made by: work',
                         'deadline 10000 ms, at most 60000 ms']:
            self.assertIn(expected, lines)

    def test_describe_json_is_the_document(self):
        status, out, err = run(tool('describe', '--json', SERVER.ws_uri))
        self.assertEqual(status, 0, err)
        plain = run(plain_discover(SERVER.ws_uri))['result']
        self.assertEqual(json.loads(out), plain)

    def test_call_says_which_parameter_is_wrong_before_sending(self):
        async def main():
            calls = []
            server = Tether.Server(discover_access=Tether.Access.ANY)
            server.add_method('count', lambda params: calls.append(params) or len(calls),
                              Tether.Access.ANY, signature='(xmx)', param_names=['n', 'm'])
            server.listen('ws://127.0.0.1:0')
            uri = server.get_uris()[0]
            try:
                status, out, err = await tool('call', uri, 'count', '{"n": "one"}')
                self.assertEqual(status, 2, err)
                self.assertIn("count: parameter 'n' (#1): expected an integer, got a string", err)
                self.assertIn('nothing was sent', err)
                status, out, err = await tool('call', uri, 'count')
                self.assertEqual(status, 2, err)
                self.assertIn('expected 1 to 2 parameters, got none', err)
                self.assertEqual(calls, [])
                status, out, err = await tool('call', uri, 'count', '[5]')
                self.assertEqual((status, out), (0, '1\n'), err)
                self.assertEqual(calls, [(5, None)])

                # A service that will not describe itself to this caller
                # is called as before, and answers for itself.
                server.set_discover_access(Tether.Access.CUSTOM)
                status, out, err = await tool('call', uri, 'count', '{"n": "one"}')
                self.assertEqual(status, 1, err)
                self.assertIn('the server answered error -32602', err)
                self.assertNotIn('description', err)
                status, out, err = await tool('describe', uri)
                self.assertEqual(status, 1)
                self.assertIn('error -32005', err)
            finally:
                server.close()
        run(main())


if __name__ == '__main__':
    unittest.main(verbosity=2)
