// SPDX-License-Identifier: LGPL-2.1-or-later
//
// service.js: a Tether service in GJS, shaped like the demo service.
//
//   gjs -m service.js unix:/tmp/tether-demo.sock
//
// Methods, open to authenticated peers (on a Unix socket: any local user
// the kernel names):
//
//   work {steps, delay_ms}  calls the client's progress {step, of} once per
//                           step, delay_ms apart; answers {done: steps}
//   ask {question}          asks the client's confirm {question}; answers
//                           what the client's user said
//
// Its first line on stdout is `listening on URI`; SIGINT and SIGTERM stop
// it cleanly. docs/gjs.md walks through it.

import GLib from 'gi://GLib';
import Tether from 'gi://Tether?version=1.0';

// snippet: handlers
function number(params, name, fallback, maximum) {
    const value = params?.[name] ?? fallback;
    if (!Number.isInteger(value) || value < 0 || value > maximum) {
        throw Tether.remoteError(Tether.RemoteError.INVALID_PARAMS,
            `${name} must be an integer from 0 to ${maximum}`);
    }
    return value;
}

// Resolves after `ms`, or rejects as soon as `cancellable` fires.
function sleep(ms, cancellable) {
    return new Promise((resolve, reject) => {
        let handler = 0;
        const timer = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            cancellable.disconnect(handler);
            resolve();
            return GLib.SOURCE_REMOVE;
        });
        handler = cancellable.connect(() => {
            // Tether cancels the invocation's cancellable on its own
            // context; leave its handler from an idle, not from inside it.
            GLib.source_remove(timer);
            GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
                cancellable.disconnect(handler);
                return GLib.SOURCE_REMOVE;
            });
            reject(new GLib.Error(Tether.RemoteError, Tether.RemoteError.CANCELLED, 'Cancelled'));
        });
    });
}

async function work(params, invocation) {
    const steps = number(params, 'steps', 3, 1000);
    const delayMs = number(params, 'delay_ms', 100, 60000);
    const cancellable = invocation.get_cancellable();
    for (let step = 1; step <= steps; step++) {
        // The client cancelled, its deadline passed, or it left: the
        // cancellable fires, and the callback in flight fails with it.
        await sleep(delayMs, cancellable);
        await invocation.callPeer('progress', {step, of: steps});
    }
    return {done: steps};
}

async function ask(params, invocation) {
    if (typeof params?.question !== 'string') {
        throw Tether.remoteError(Tether.RemoteError.INVALID_PARAMS,
            'question must be a string');
    }
    return invocation.callPeer('confirm', {question: params.question});
}
// end snippet: handlers

// snippet: main
const server = new Tether.Server();
server.addMethod('work', work);
server.addMethod('ask', ask);
server.listen(ARGV[0] ?? 'unix:/tmp/tether-demo.sock');
print(`listening on ${server.get_uris()[0]}`);

// Nothing is served unless a main loop runs: without one, gjs would
// reach the end of this module and exit.
const loop = new GLib.MainLoop(null, false);
for (const signum of [2, 15]) {             // SIGINT, SIGTERM
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, () => {
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
}
loop.run();
server.close();                             // closes the connections, removes the socket
// end snippet: main
