// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Issue #12 from GJS: a service written in JavaScript describes its
// methods and the callbacks it makes (Tether.MethodInfo), and a GJS client
// reads a service's description (rpc.discover) — its own, and that of the
// demo service (`tether serve`). Prints TAP; every test and every wait is
// bounded.
//
//   GI_TYPELIB_PATH=BUILD/introspection LD_LIBRARY_PATH=BUILD/lib \
//   TETHER_TOOL=BUILD/tools/tether gjs -m tests/gjs/test-discover.js

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

const HERE = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
const SOURCE_ROOT = GLib.path_get_dirname(GLib.path_get_dirname(HERE));
const MODULE = GLib.getenv('TETHER_GJS_MODULE') ?? `${SOURCE_ROOT}/bindings/gjs/tether.js`;
const {default: Tether} = await import(MODULE.startsWith('file://') ? MODULE : `file://${MODULE}`);
const TETHER_TOOL = GLib.getenv('TETHER_TOOL') ?? `${SOURCE_ROOT}/_build/tools/tether`;

const STEP_TIMEOUT = 10000;
const TEST_TIMEOUT = 30000;

const tests = [];
function test(name, fn) {
    tests.push([name, fn]);
}

function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new Error(message);
}

function show(value) {
    return JSON.stringify(value, (k, v) => typeof v === 'bigint' ? `${v}n` : v);
}

function assertEqual(got, expected, what = 'value') {
    if (show(got) !== show(expected))
        throw new Error(`${what}: expected ${show(expected)}, got ${show(got)}`);
}

function withTimeout(promise, ms, what) {
    let id = 0;
    const timer = new Promise((resolve, reject) => {
        id = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            id = 0;
            reject(new Error(`timed out after ${ms} ms: ${what}`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timer]).finally(() => {
        if (id !== 0)
            GLib.source_remove(id);
    });
}

const names = list => list.map(m => m.name);

// A JavaScript service: a described method that calls back, one for
// authenticated peers only, and the callback declared.
function makeServer() {
    const server = new Tether.Server({
        service_title: 'GJS service', service_version: '3.1',
        discover_access: Tether.Access.ANY,
    });
    server.addMethod('greet', ([name]) => `hello ${name}`,
        {access: Tether.Access.ANY, signature: '(sms)', paramNames: ['name', 'title']});
    server.addMethod('secret', () => 42);

    const greet = Tether.MethodInfo.new('greet');
    greet.set_summary('Greets');
    greet.set_param_description('name', 'who');
    greet.set_result('s', 'the greeting');
    greet.add_callback('wave');
    assert(server.describe_method(greet), 'describe_method(greet)');
    assert(!server.describe_method(Tether.MethodInfo.new('missing')), 'no such method');

    const wave = Tether.MethodInfo.new('wave');
    wave.set_params('(b)', ['back']);
    server.add_callback_info(wave);
    return server;
}

async function discover(uri) {
    const client = new Tether.Client({uri});
    await client.open();
    try {
        return await client.call('rpc.discover', null, {timeoutMsec: STEP_TIMEOUT});
    } finally {
        client.close();
    }
}

test('a JavaScript service describes itself', async () => {
    const dir = GLib.dir_make_tmp('tether-gjs-discover-XXXXXX');
    const unixUri = `unix:${dir}/s.sock`;
    const server = makeServer();
    try {
        server.listen(unixUri);
        server.listen('ws://127.0.0.1:0');
        const wsUri = server.get_uris().find(u => u.startsWith('ws:'));

        // Authenticated by the kernel's uid on unix: everything.
        const doc = await discover(unixUri);
        assertEqual(doc.openrpc, '1.3.2', 'openrpc');
        assertEqual(doc.info, {title: 'GJS service', version: '3.1'}, 'info');
        assertEqual(names(doc.methods), ['greet', 'secret'], 'methods');
        const greet = doc.methods[0];
        assertEqual(greet.summary, 'Greets', 'summary');
        assertEqual(greet.params.map(p => [p.name, p.required ?? false, p.schema.type ?? 'maybe']),
            [['name', true, 'string'], ['title', false, 'maybe']], 'params');
        assertEqual(greet.params[0].description, 'who', 'param description');
        assertEqual(greet.result, {name: 'result', description: 'the greeting',
            schema: {type: 'string'}}, 'result');
        assertEqual(greet['x-tether-callbacks'], ['wave'], 'callbacks made');
        assertEqual(greet['x-tether-access'], 'any', 'access');
        assertEqual(doc['x-tether-callbacks'].map(c => [c.name, c['x-tether-made-by']]),
            [['wave', ['greet']]], 'callbacks');

        // Anonymous on ws://: only what any peer may call.
        const open = await discover(wsUri);
        assertEqual(names(open.methods), ['greet'], 'methods shown on ws://');
    } finally {
        server.close();
        GLib.rmdir(dir);
    }
});

test("the demo service's description", async () => {
    const dir = GLib.dir_make_tmp('tether-gjs-discover-XXXXXX');
    const uri = `unix:${dir}/demo.sock`;
    const launcher = new Gio.SubprocessLauncher({
        flags: Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDERR_SILENCE,
    });
    const proc = launcher.spawnv([TETHER_TOOL, 'serve', uri]);
    try {
        const stdout = new Gio.DataInputStream({base_stream: proc.get_stdout_pipe()});
        const line = await withTimeout(new Promise((resolve, reject) => {
            stdout.read_line_async(GLib.PRIORITY_DEFAULT, null, (source, result) => {
                try {
                    resolve(source.read_line_finish_utf8(result)[0]);
                } catch (e) {
                    reject(e);
                }
            });
        }), STEP_TIMEOUT, 'tether serve to start');
        assertEqual(line, `listening on ${uri}`, 'tether serve');

        const doc = await discover(uri);
        assertEqual(doc.info.title, 'Tether demo service', 'title');
        const work = doc.methods.find(m => m.name === 'work');
        assertEqual(work['x-tether-callbacks'], ['progress'], "work's callbacks");
        assertEqual(work.params.map(p => p.name), ['steps', 'delay_ms'], "work's params");
        assertEqual(names(doc['x-tether-callbacks']), ['confirm', 'progress'], 'callbacks');
    } finally {
        proc.send_signal(15);
        await withTimeout(new Promise(resolve => proc.wait_async(null, (p, r) => {
            p.wait_finish(r);
            resolve();
        })), STEP_TIMEOUT, 'tether serve to stop');
        GLib.rmdir(dir);
    }
});

print(`1..${tests.length}`);
let failed = 0;
for (const [i, [name, fn]] of tests.entries()) {
    try {
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
print(`# ${tests.length - failed} passed, ${failed} failed`);
System.exit(failed === 0 ? 0 : 1);
