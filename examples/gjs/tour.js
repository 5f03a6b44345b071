// SPDX-License-Identifier: LGPL-2.1-or-later
//
// tour.js: a client that tries each thing docs/gjs.md explains.
//
//   gjs -m tour.js unix:/tmp/tether-demo.sock
//
// Works with any service that has the demo service's `work` and `ask`
// (`tether serve`, examples/c/desktop-service, examples/*/service.*):
// callbacks, call options, a deadline, cancelling, and errors. It exits 0
// only if each outcome is the one the guide promises, so it doubles as a
// test.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';
// snippet: import
import Tether from 'gi://Tether?version=1.0';
// end snippet: import

function expect(condition, what) {
    if (!condition) {
        printerr(`tour: expected ${what}`);
        System.exit(1);
    }
}

function later(ms, fn) {
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        fn();
        return GLib.SOURCE_REMOVE;
    });
}

// snippet: client
const client = new Tether.Client({uri: ARGV[0] ?? 'unix:/tmp/tether-demo.sock'});

client.addMethod('progress', ({step, of}, invocation) => {
    // The invocation tells how long the call that caused this one has left.
    print(`progress: step ${step} of ${of} (${invocation.get_remaining_ms()} ms left)`);
    return true;
});

client.addMethod('confirm', async ({question}) => {
    await new Promise(resolve => later(50, resolve));   // a real program asks its user here
    print(`confirm: ${question} -> yes`);
    return true;
});

await client.open();
// end snippet: client

try {
    // snippet: options
    const result = await client.call('work', {steps: 2, delay_ms: 10}, {timeoutMsec: 5000});
    print(`work -> ${JSON.stringify(result)}`);
    const answer = await client.call('ask', {question: 'Proceed?'});
    print(`ask -> ${answer}`);
    // end snippet: options
    expect(result.done === 2 && answer === true, 'work and ask to succeed');

    // snippet: deadline
    try {
        await client.call('work', {steps: 1, delay_ms: 5000}, {timeoutMsec: 200});
        throw new Error('work answered before its deadline');
    } catch (error) {
        if (!error.matches?.(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT))
            throw error;
        print(`work -> no answer in time: ${error.message}`);
    }
    // end snippet: deadline

    // snippet: cancel
    const cancellable = new Gio.Cancellable();
    later(100, () => cancellable.cancel());            // the service gets rpc.cancel
    try {
        await client.call('work', {steps: 1, delay_ms: 5000}, {cancellable});
        throw new Error('work was not cancelled');
    } catch (error) {
        if (!error.matches?.(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
            throw error;
        print(`work -> cancelled: ${error.message}`);
    }
    // end snippet: cancel

    // snippet: errors
    try {
        await client.call('work', {steps: 'three'});
        throw new Error('work {steps: "three"} was answered');
    } catch (error) {
        // A GLib.Error of the Tether.RemoteError domain: the service said no.
        if (!Tether.isRemoteError(error, Tether.RemoteError.INVALID_PARAMS))
            throw error;
        print(`work {steps: 'three'} -> refused (${error.code}): ${error.message}`);
    }
    // end snippet: errors
    try {
        await client.call('no-such-method');
        throw new Error('no-such-method was answered');
    } catch (error) {
        if (!error.matches?.(Tether.RemoteError, Tether.RemoteError.METHOD_NOT_FOUND))
            throw error;
        print(`no-such-method -> refused: ${error.message}`);
    }
} catch (error) {
    expect(false, `no ${error}`);
} finally {
    client.close();
}
