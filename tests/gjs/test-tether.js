// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Tether from GJS through bindings/gjs/tether.js: a Tether.Server in this
// process with handlers written in JavaScript (plain and async functions),
// and `tether serve` (the demo service) as a subprocess. Prints TAP and
// exits non-zero if any test failed; each test is bounded by TEST_TIMEOUT
// and every wait inside it is bounded too.
//
//   GI_TYPELIB_PATH=BUILD/introspection LD_LIBRARY_PATH=BUILD/lib \
//   TETHER_TOOL=BUILD/tools/tether gjs -m tests/gjs/test-tether.js
//
// TETHER_GJS_MODULE may name the module to test: a path or file URI, or
// gi://Tether?version=1.0 for the override (with GJS_PATH naming the
// directory that holds overrides/Tether.js); the default is the source
// tree's bindings/gjs/tether.js.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

const HERE = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
const SOURCE_ROOT = GLib.path_get_dirname(GLib.path_get_dirname(HERE));
const MODULE = GLib.getenv('TETHER_GJS_MODULE') ?? `${SOURCE_ROOT}/bindings/gjs/tether.js`;
const {default: Tether} = await import(/^(file|gi):\/\//.test(MODULE) ? MODULE : `file://${MODULE}`);
if (typeof Tether.toVariant !== 'function')
    throw new Error(`${MODULE} did not bring Tether's helpers (is GJS_PATH set?)`);
const TETHER_TOOL = GLib.getenv('TETHER_TOOL') ?? `${SOURCE_ROOT}/_build/tools/tether`;

const STEP_TIMEOUT = 10000;
const TEST_TIMEOUT = 30000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// -- a tiny TAP harness --------------------------------------------------------

const tests = [];
function test(name, fn) {
    tests.push([name, fn]);
}

class AssertionError extends Error {}

function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new AssertionError(message);
}

function show(value) {
    return JSON.stringify(value, (k, v) => typeof v === 'bigint' ? `${v}n` : v);
}

function deepEqual(a, b) {
    if (typeof a !== typeof b)
        return false;
    if (Array.isArray(a))
        return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
    if (a !== null && typeof a === 'object') {
        if (b === null || Array.isArray(b))
            return false;
        const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
        return deepEqual(ka, kb) && ka.every(k => deepEqual(a[k], b[k]));
    }
    return Object.is(a, b);
}

function assertEqual(got, expected, what = 'value') {
    if (!deepEqual(got, expected))
        throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(got)}`);
}

async function assertRejects(promise, check, what) {
    try {
        await promise;
    } catch (error) {
        check(error);
        return error;
    }
    throw new AssertionError(`${what}: did not fail`);
}

function assertGError(error, domain, code) {
    assert(error instanceof GLib.Error, `expected a GLib.Error, got ${error}`);
    assert(error.matches(domain, code),
        `expected ${domain.name ?? domain} ${code}, got ${error} (${error.code})`);
}

function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

function withTimeout(promise, ms, what) {
    let id = 0;
    const timer = new Promise((resolve, reject) => {
        id = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            id = 0;
            reject(new AssertionError(`timed out after ${ms} ms: ${what}`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timer]).finally(() => {
        if (id !== 0)
            GLib.source_remove(id);
    });
}

async function waitFor(predicate, what, ms = STEP_TIMEOUT) {
    const deadline = GLib.get_monotonic_time() + ms * 1000;
    while (!predicate()) {
        if (GLib.get_monotonic_time() > deadline)
            throw new AssertionError(`timed out waiting for ${what}`);
        await sleep(10);
    }
}

// -- an in-process service and a client with JavaScript handlers --------------

class Service {
    constructor(uri, props = {}) {
        this.server = new Tether.Server(props);
        this.notes = [];
        this.cancelled = [];
        this.started = false;
        this.peers = [];
        this.misbehaved = [];
        const s = this.server;
        s.connect('peer-connected', (server, peer) => this.peers.push(peer));
        s.connect('peer-misbehaved', (server, peer, identity, reason, details) =>
            this.misbehaved.push({peer, identity, reason, details}));
        s.addMethod('echo', params => params);
        s.addMethod('aecho', async (params, invocation) => {
            await sleep(1);
            return {method: invocation.get_method_name(), params};
        });
        s.addMethod('none', () => undefined);
        s.addMethod('boom', params => {
            throw new Error(`kaboom ${params[0]}`);
        });
        s.addMethod('aboom', async () => {
            await sleep(1);
            throw new TypeError('async kaboom');
        });
        s.addMethod('app_error', () => {
            throw Tether.remoteError(4001, 'Out of paper');
        });
        s.addMethod('denied', () => {
            throw new GLib.Error(Tether.Error, Tether.Error.PERMISSION_DENIED, 'Not you');
        });
        s.addMethod('subtract', ([minuend, subtrahend]) => minuend - subtrahend,
            {signature: '(xx)', paramNames: ['minuend', 'subtrahend']});
        s.addMethod('hang', (params, invocation) => {
            this.started = true;
            return new Promise(resolve => {
                invocation.get_cancellable().connect(() => {
                    this.cancelled.push(['hang', invocation.has_replied()]);
                    resolve('too late');
                });
            });
        });
        s.addMethod('work', async ({steps}, invocation) => {
            for (let step = 1; step <= steps; step++) {
                // eslint-disable-next-line no-await-in-loop
                const answer = await invocation.callPeer('progress', {step, of: steps});
                if (answer !== true)
                    throw Tether.remoteError(4002, `progress answered ${show(answer)}`);
            }
            return {done: steps};
        });
        s.addMethod('ask', (params, invocation) =>
            invocation.callPeer('confirm', {question: params.question}));
        s.addMethod('note', (params, invocation) => {
            this.notes.push([invocation.is_notification(), params]);
        });
        s.addMethod('whoami', (params, invocation) => {
            const identity = invocation.get_identity();
            return {uid: identity.get_uid(), authenticated: identity.is_authenticated()};
        });
        s.addMethod('manual', (params, invocation) => {
            invocation.return_value(new GLib.Variant('s', 'answered by hand'));
            return 'ignored';
        });
        s.addMethod('later', (params, invocation) => {
            GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
                invocation.returnValue({later: true});
                return GLib.SOURCE_REMOVE;
            });
            return Tether.REPLY_LATER;
        });
        s.addMethod('unconvertible', () => () => 'a function');
        s.addMethod('typed', params => [params, 'x'], {resultSignature: '(vs)'});
        s.addMethod('anyone', () => 'open to all', {access: Tether.Access.ANY});
        s.listen(uri);
    }

    close() {
        this.server.close();
    }
}

class Caller {
    constructor(uri) {
        this.client = new Tether.Client({uri});
        this.progress = [];
        this.questions = [];
        this.notes = [];
        this.client.addMethod('progress', ({step, of}) => {
            this.progress.push([step, of]);
            return true;
        });
        this.client.addMethod('confirm', async ({question}) => {
            await sleep(5);
            this.questions.push(question);
            return question.endsWith('?');
        });
        this.client.addMethod('note', params => {
            this.notes.push(params);
        });
    }
}

function tmpUri(name) {
    return `unix:${GLib.dir_make_tmp('tether-gjs-XXXXXX')}/${name}`;
}

async function withPair(fn, props = {}) {
    const uri = tmpUri('s.sock');
    const service = new Service(uri, props);
    const caller = new Caller(uri);
    try {
        assert(await caller.client.open() === caller.client, 'open() resolves to the client');
        await fn(service, caller, uri);
    } finally {
        caller.client.close();
        service.close();
        GLib.unlink(uri.slice('unix:'.length));
        GLib.rmdir(GLib.path_get_dirname(uri.slice('unix:'.length)));
    }
}

const REMOTE = Tether.RemoteError;
const IO = Gio.IOErrorEnum;

const VALUES = [
    0, 1, -1, INT64_MIN, INT64_MAX, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 53n + 1n,
    0.5, 1e300, -1e-300, 5e-324,
    true, false, null,
    '', 'plain', 'é ☃ \u{1F600} "quoted" \\ \n',
    [], {}, [[]], {'': null},
    [1, 'two', 3.5, null, true, [false, {deep: [INT64_MIN]}]],
    {nested: {list: [1, {x: null}], empty: {}, max: INT64_MAX}, flag: false, pi: Math.PI},
];

// -- in-process tests ------------------------------------------------------------

test('open, call, close', () => withPair(async (service, {client}) => {
    assert(client.is_connected(), 'connected');
    assertEqual(await client.call('echo', ['hi']), ['hi']);
    assertEqual(await client.call('anyone'), 'open to all');
    client.close();
    assert(!client.is_connected(), 'closed');
    await assertRejects(client.call('echo', [1]),
        e => assertGError(e, IO, IO.NOT_CONNECTED), 'call after close');
}));

// docs/gjs.md says why calls take a Gio.Cancellable and no AbortSignal:
// GJS 1.74 has none. When a GJS that has one runs this, accept it too.
test('no AbortController in this GJS (docs/gjs.md)', () => {
    assertEqual(typeof AbortController, 'undefined', 'typeof AbortController');
    assertEqual(typeof AbortSignal, 'undefined', 'typeof AbortSignal');
});

test('open failure', async () => {
    const client = new Tether.Client({uri: tmpUri('nobody.sock')});
    await assertRejects(client.open(), e => assert(e.domain === Gio.io_error_quark(), `${e}`),
        'open on a missing socket');
});

test('value round trips', () => withPair(async (service, {client}) => {
    for (const value of VALUES) {
        /* eslint-disable no-await-in-loop */
        assertEqual(await client.call('echo', [value]), [value], `[${show(value)}]`);
        assertEqual(await client.call('echo', {v: value}), {v: value}, `{v: ${show(value)}}`);
        assertEqual((await client.call('aecho', [value])).params, [value], `aecho ${show(value)}`);
        /* eslint-enable no-await-in-loop */
    }
    assertEqual(await client.call('echo', VALUES), VALUES, 'all values');
    // JavaScript cannot tell 1.0 from 1: integral numbers travel as integers.
    assertEqual(await client.call('echo', [1.0, -0]), [1, 0]);
    assertEqual(await client.call('echo', [new Map([['m', 1]])]), [{m: 1}]);
}));

test('value conversion', () => {
    const types = [
        [{a: [1]}, null, 'a{sv}'], [[], null, 'av'], [null, null, 'mv'], [true, null, 'b'],
        [7, null, 'x'], [7.5, null, 'd'], [2n ** 62n, null, 'x'], ['s', null, 's'],
        [[1, 'a'], '(xs)', '(xs)'], [[1, null], 'amx', 'amx'], [{k: 1}, 'a{sx}', 'a{sx}'],
        [[[1, 's']], 'a(xs)', 'a(xs)'], [[2 ** 60], '(x)', '(x)'],
    ];
    for (const [value, signature, type] of types)
        assertEqual(Tether.toVariant(value, signature).get_type_string(), type, show(value));
    const raw = new GLib.Variant('(ui)', [1, -2]);
    assert(Tether.toVariant(raw) === raw, 'a GLib.Variant passes through');
    assertEqual(Tether.toVariant({raw}).print(false), "{'raw': <(uint32 1, -2)>}");
    assertEqual(Tether.fromVariant(Tether.toVariant({a: [1, 2.5, null, true, 's']})),
        {a: [1, 2.5, null, true, 's']});
    assertEqual(Tether.fromVariant(new GLib.Variant('x', INT64_MAX)), INT64_MAX);
    assertEqual(Tether.fromVariant(null), null);
    for (const [bad, signature] of [[INT64_MAX + 1n, null], [[INT64_MIN - 1n], null],
        [() => 1, null], [new Gio.Cancellable(), null], [[1, 2, 3], '(xx)'], [5, 'as']]) {
        let threw = false;
        try {
            Tether.toVariant(bad, signature);
        } catch (e) {
            threw = e instanceof TypeError || e instanceof RangeError;
        }
        assert(threw, `${String(bad)} as ${signature} must throw a TypeError or RangeError`);
    }
});

test('raw variants and signatures', () => withPair(async (service, {client}) => {
    assertEqual(await client.call('subtract', new GLib.Variant('(xx)', [42, 23])), 19);
    const result = await client.call('echo', new GLib.Variant('av', [new GLib.Variant('s', 'x')]),
        {raw: true});
    assert(result instanceof GLib.Variant && result.get_type_string() === 'av', 'raw result');
    assertEqual(await client.call('echo', [1, 'a'], {signature: '(xs)'}), [1, 'a']);
    assertEqual(await client.call('typed', [5]), [[5], 'x']);
    assertEqual(await client.call('subtract', {minuend: 42, subtrahend: 23}), 19);
    assertEqual(await client.call('subtract', [23, 42]), -19);
    const e = await assertRejects(client.call('subtract', {minuend: 1}),
        x => assertGError(x, REMOTE, REMOTE.INVALID_PARAMS), 'missing subtrahend');
    assert(e.message.includes('subtrahend'), e.message);
}));

test('null answers and manual answers', () => withPair(async (service, {client}) => {
    assertEqual(await client.call('none'), null);
    const nothing = await client.call('none', null, {raw: true});
    assertEqual(nothing.get_type_string(), 'mv');
    assertEqual(await client.call('echo'), null);
    assertEqual(await client.call('manual'), 'answered by hand');
    assertEqual(await client.call('later'), {later: true});
}));

test('remote errors', () => withPair(async (service, {client}) => {
    let e = await assertRejects(client.call('no_such_method'),
        x => assertGError(x, REMOTE, REMOTE.METHOD_NOT_FOUND), 'unknown method');
    assert(Tether.isRemoteError(e, -32601) && e.domain === Tether.remote_error_quark(), 'domain');
    e = await assertRejects(client.call('app_error'), x => assertGError(x, REMOTE, 4001), 'app');
    assertEqual(e.message, 'Out of paper');
    e = await assertRejects(client.call('denied'),
        x => assertGError(x, REMOTE, REMOTE.PERMISSION_DENIED), 'TETHER_ERROR mapping');
    assertEqual(e.message, 'Not you');
    e = await assertRejects(client.call('boom', [42]),
        x => assertGError(x, REMOTE, REMOTE.INTERNAL_ERROR), 'a thrown Error');
    assertEqual(e.message, 'kaboom 42');
    e = await assertRejects(client.call('aboom'), x => assertGError(x, REMOTE, -32603), 'async');
    assertEqual(e.message, 'async kaboom');
    e = await assertRejects(client.call('unconvertible'),
        x => assertGError(x, REMOTE, -32603), 'unconvertible');
    assert(e.message.includes('no JSON-RPC mapping'), e.message);
    assertEqual(await client.call('echo', [1]), [1]);
}));

test('local timeout', () => withPair(async (service, {client}) => {
    const e = await assertRejects(client.call('hang', null, {timeoutMsec: 100}),
        x => assertGError(x, IO, IO.TIMED_OUT), 'a 100 ms call');
    assert(!Tether.isRemoteError(e), 'local');
    await waitFor(() => service.cancelled.length > 0, 'the server-side deadline');
}));

test('cancellation reaches the server', () => withPair(async (service, {client}) => {
    const cancellable = new Gio.Cancellable();
    const call = client.call('hang', null, {cancellable});
    await waitFor(() => service.started, 'the handler to start');
    cancellable.cancel();
    await assertRejects(call, x => assertGError(x, IO, IO.CANCELLED), 'cancelled call');
    await waitFor(() => service.cancelled.length > 0, 'rpc.cancel at the server');
    assertEqual(service.cancelled, [['hang', true]]);
    await assertRejects(client.call('echo', [1], {cancellable}),
        x => assertGError(x, IO, IO.CANCELLED), 'already cancelled');
    assertEqual(await client.call('echo', ['still here']), ['still here']);
}));

test('callbacks answered by JavaScript', () => withPair(async (service, caller) => {
    assertEqual(await caller.client.call('work', {steps: 3}), {done: 3});
    assertEqual(caller.progress, [[1, 3], [2, 3], [3, 3]]);
    assertEqual(await caller.client.call('ask', {question: 'Proceed?'}), true);
    assertEqual(await caller.client.call('ask', {question: 'No.'}), false);
    assertEqual(caller.questions, ['Proceed?', 'No.']);
}));

test('async handlers in parallel', () => withPair(async (service, {client}) => {
    const results = await Promise.all([...Array(20).keys()].map(i => client.call('aecho', [i])));
    assertEqual(results.map(r => r.params), [...Array(20).keys()].map(i => [i]));
}));

test('notifications both ways', () => withPair(async (service, caller) => {
    assert(caller.client.sendNotification('note', {n: 1}), 'sent');
    await waitFor(() => service.notes.length > 0, 'the notification');
    assertEqual(service.notes, [[true, {n: 1}]]);
    await waitFor(() => service.peers.length > 0, 'peer-connected');
    service.peers[0].sendNotification('note', [1, null]);
    await waitFor(() => caller.notes.length > 0, 'the notification to the client');
    assertEqual(caller.notes, [[1, null]]);
}));

test('peer calls and identity', () => withPair(async (service, caller) => {
    await waitFor(() => service.peers.length > 0, 'peer-connected');
    const peer = service.peers[0];
    assert(peer instanceof Tether.Peer && peer.is_tether(), 'a Tether peer');
    assertEqual(await peer.call('progress', {step: 7, of: 9}), true);
    assertEqual(caller.progress, [[7, 9]]);
    assertEqual(await peer.call('confirm', {question: 'Sure?'}), true);
    await assertRejects(peer.call('nothing_here'), x => assertGError(x, REMOTE, -32601), 'peer');
    // GJS has no getuid(): the kernel-verified uid the peer has is the reference.
    const uid = peer.get_identity().get_uid();
    assert(uid >= 0, `uid ${uid}`);
    assertEqual(await caller.client.call('whoami'), {uid, authenticated: true});
    assertEqual(peer.get_identity().get_transport(), Tether.TransportKind.UNIX);
}));

test('statistics', () => withPair(async (service, caller) => {
    for (let i = 0; i < 5; i++)
        await caller.client.call('echo', [i]); // eslint-disable-line no-await-in-loop
    await caller.client.call('work', {steps: 2});
    const stats = service.server.get_statistics();
    assert(stats.calls_received >= 6, `calls_received ${stats.calls_received}`);
    assert(stats.calls_sent >= 2, `calls_sent ${stats.calls_sent}`);
    assertEqual(stats.connections, 1, 'connections');
    assertEqual(stats.pending_calls, 0, 'pending_calls');
    assert(stats.bytes_received > 0 && stats.bytes_sent > 0, 'bytes');
    for (const field of ['invocations', 'timed_out', 'rejected', 'unsolicited_responses',
        'invalid_messages', 'bytes_queued', 'strikes', 'peers_cut_off'])
        assert(typeof stats[field] === 'number', field);
    const mine = caller.client.get_statistics();
    assert(mine.calls_sent >= 6, `client calls_sent ${mine.calls_sent}`);
    assertEqual(mine.calls_received, 2, 'client calls_received');
    assert(service.peers[0].get_statistics().calls_received >= 6, 'peer statistics');
}));

test('reconnect follows a drain', async () => {
    const uri = tmpUri('s.sock');
    const first = new Service(uri);
    let second = null;
    const client = new Tether.Client({uri, reconnect: true, reconnect_min_delay: 10,
        reconnect_max_delay: 50});
    const events = [];
    client.connect('going-away', () => events.push('going-away'));
    client.connect('reconnected', () => events.push('reconnected'));
    client.connect('disconnected', () => events.push('disconnected'));
    let drained = false;
    try {
        assert(client.reconnect === true, 'the property reads back');
        await client.open();
        assertEqual(await client.call('echo', ['before']), ['before']);
        first.server.shutdown_async(10000, null, (server, result) => {
            drained = server.shutdown_finish(result);
        });
        await waitFor(() => events.includes('going-away'), 'going-away');
        assert(!client.is_connected(), 'set aside at once');
        let answered = null;
        const waiting = client.call('echo', ['during'], {timeoutMsec: 10000}).then(v => {
            answered = v;
        });
        await sleep(50);
        assert(answered === null, 'the call waits for a connection');
        second = new Service(uri);
        await waiting;
        assertEqual(answered, ['during']);
        await waitFor(() => drained, 'the drain');
        assertEqual(events, ['going-away', 'reconnected']);
    } finally {
        client.close();
        first.close();
        second?.close();
        GLib.unlink(uri.slice('unix:'.length));
        GLib.rmdir(GLib.path_get_dirname(uri.slice('unix:'.length)));
    }
});

test('peer-misbehaved: handshake timeout', () => withPair(async (service, caller, uri) => {
    const sockets = new Gio.SocketClient();
    const address = Gio.UnixSocketAddress.new(uri.slice('unix:'.length));
    const connection = await new Promise((resolve, reject) => {
        sockets.connect_async(address, null, (source, result) => {
            try {
                resolve(source.connect_finish(result));
            } catch (e) {
                reject(e);
            }
        });
    });
    try {
        await waitFor(() => service.misbehaved.length > 0, 'peer-misbehaved');
    } finally {
        connection.close(null);
    }
    const {peer, identity, reason, details} = service.misbehaved[0];
    assertEqual(peer, null);
    assertEqual(reason, Tether.Misbehavior.HANDSHAKE_TIMEOUT);
    assert(identity instanceof Tether.Identity, 'identity');
    assert(details.includes('200 ms'), details);
}, {handshake_timeout: 200}));

test('peer-misbehaved: message too large', () => withPair(async (service, {client}) => {
    await waitFor(() => service.peers.length > 0, 'peer-connected');
    await assertRejects(client.call('echo', ['x'.repeat(4096)]),
        x => assertGError(x, IO, IO.CONNECTION_CLOSED), 'too large');
    await waitFor(() => service.misbehaved.length > 0, 'peer-misbehaved');
    const {peer, reason} = service.misbehaved[0];
    assert(peer === service.peers[0], 'the peer');
    assertEqual(reason, Tether.Misbehavior.MESSAGE_TOO_LARGE);
    assert(service.server.get_statistics().peers_cut_off >= 1, 'peers_cut_off');
}, {max_message_size: 1024}));

// -- against `tether serve` ---------------------------------------------------------

class ToolService {
    async start() {
        const dir = GLib.dir_make_tmp('tether-gjs-serve-XXXXXX');
        this.dir = dir;
        this.uri = `unix:${dir}/x.sock`;
        this.logPath = `${dir}/stderr.log`;
        const launcher = new Gio.SubprocessLauncher({flags: Gio.SubprocessFlags.STDOUT_PIPE});
        launcher.set_stderr_file_path(this.logPath);
        this.proc = launcher.spawnv([TETHER_TOOL, 'serve', this.uri]);
        const stdout = new Gio.DataInputStream({base_stream: this.proc.get_stdout_pipe()});
        const line = await withTimeout(new Promise((resolve, reject) => {
            stdout.read_line_async(GLib.PRIORITY_DEFAULT, null, (source, result) => {
                try {
                    const [bytes] = source.read_line_finish_utf8(result);
                    resolve(bytes);
                } catch (e) {
                    reject(e);
                }
            });
        }), STEP_TIMEOUT, 'tether serve to start');
        if (line !== `listening on ${this.uri}`)
            throw new Error(`tether serve did not start: ${line}; ${this.log()}`);
        return this;
    }

    log() {
        try {
            return new TextDecoder().decode(GLib.file_get_contents(this.logPath)[1]);
        } catch (e) {
            return '';
        }
    }

    async stop() {
        this.proc.send_signal(15);
        await withTimeout(new Promise(resolve => {
            this.proc.wait_async(null, (p, r) => {
                p.wait_finish(r);
                resolve();
            });
        }), STEP_TIMEOUT, 'tether serve to stop').catch(e => {
            this.proc.force_exit();
            throw e;
        });
        GLib.unlink(this.logPath);
        GLib.rmdir(this.dir);
    }
}

let tool = null;

async function withTool(fn) {
    const caller = new Caller(tool.uri);
    await caller.client.open();
    try {
        await fn(caller, caller.client);
    } finally {
        caller.client.close();
    }
}

test('tether serve: work with progress', () => withTool(async (caller, client) => {
    assertEqual(await client.call('work', {steps: 3, delay_ms: 10}), {done: 3});
    assertEqual(caller.progress, [[1, 3], [2, 3], [3, 3]]);
    assertEqual(await client.call('work', [2, 1]), {done: 2});
}));

test('tether serve: ask with an async confirm', () => withTool(async (caller, client) => {
    assertEqual(await client.call('ask', {question: 'Delete it?'}), true);
    assertEqual(await client.call('ask', ['Not a question']), false);
    assertEqual(caller.questions, ['Delete it?', 'Not a question']);
}));

test('tether serve: subtract and values', () => withTool(async (caller, client) => {
    assertEqual(await client.call('subtract', {minuend: 42, subtrahend: 23}), 19);
    assertEqual(await client.call('subtract', [42, 23]), 19);
    assertEqual(await client.call('subtract', [INT64_MAX, 1n], {signature: '(xx)'}),
        INT64_MAX - 1n);
    assertEqual(await client.call('sum', [1, 2, 3.5]), 6.5);
    assertEqual(await client.call('get_data'), ['hello', 5]);
    for (const value of VALUES) {
        /* eslint-disable no-await-in-loop */
        assertEqual(await client.call('echo', [value]), [value], show(value));
        assertEqual(await client.call('echo', {k: value}), {k: value}, show(value));
        /* eslint-enable no-await-in-loop */
    }
    const me = await client.call('whoami');
    assertEqual([me.transport, me.tether], ['unix', true]);
}));

test('tether serve: errors', () => withTool(async (caller, client) => {
    await assertRejects(client.call('frobnicate'),
        x => assertGError(x, REMOTE, REMOTE.METHOD_NOT_FOUND), 'unknown');
    const e = await assertRejects(client.call('work', {steps: 'three'}),
        x => assertGError(x, REMOTE, REMOTE.INVALID_PARAMS), 'bad steps');
    assert(e.message.includes('steps'), e.message);
    await assertRejects(client.call('sleep', {ms: 5000}, {timeoutMsec: 100}),
        x => assertGError(x, IO, IO.TIMED_OUT), 'timeout');
}));

test('tether serve: cancellation reaches the service', () => withTool(async (caller, client) => {
    const cancellable = new Gio.Cancellable();
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 100, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    await assertRejects(client.call('sleep', {ms: 5000}, {cancellable}),
        x => assertGError(x, IO, IO.CANCELLED), 'cancelled');
    await waitFor(() => tool.log().includes('(the client cancelled)'), "the service's log");
    assertEqual(client.get_statistics().pending_calls, 0, 'pending_calls');
}));

// -- run ------------------------------------------------------------------------------

print(`1..${tests.length}`);
let failed = 0;
try {
    tool = await new ToolService().start();
} catch (e) {
    printerr(`# could not start tether serve (${TETHER_TOOL}): ${e}`);
}
for (const [i, [name, fn]] of tests.entries()) {
    try {
        if (name.startsWith('tether serve') && tool === null)
            throw new Error('no tether serve');
        // eslint-disable-next-line no-await-in-loop
        await withTimeout(Promise.resolve().then(fn), TEST_TIMEOUT, name);
        print(`ok ${i + 1} - ${name}`);
    } catch (e) {
        failed++;
        print(`not ok ${i + 1} - ${name}`);
        for (const line of `${e}\n${e.stack ?? ''}`.trim().split('\n'))
            print(`# ${line}`);
    }
}
if (tool !== null)
    await tool.stop().catch(e => printerr(`# ${e}`));
print(`# ${tests.length - failed} passed, ${failed} failed`);
System.exit(failed === 0 ? 0 : 1);
