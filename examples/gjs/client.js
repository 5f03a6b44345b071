// SPDX-License-Identifier: LGPL-2.1-or-later
//
// client.js: a GJS client of the demo service (`tether serve URI`).
//
//   gjs -m client.js unix:/tmp/x.sock
//
// Calls `work` and answers the `progress` callbacks it causes, calls `ask`
// and answers its `confirm` callback (with an async function, as a program
// that asks its user would), then makes a call the service refuses. It
// exits 0 only if every answer is what the service promises, so it doubles
// as a test. `gi://Tether` brings Tether's helpers through its GJS override
// (installed with Tether; GJS_PATH in `meson devenv`).

import GLib from 'gi://GLib';
import System from 'system';
import Tether from 'gi://Tether?version=1.0';

function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

function fail(message) {
    printerr(`client: ${message}`);
    System.exit(1);
}

if (ARGV.length !== 1)
    fail('usage: gjs -m client.js URI');

const client = new Tether.Client({uri: ARGV[0]});

client.addMethod('progress', ({step, of}, invocation) => {
    print(`progress: step ${step} of ${of} (${invocation.get_remaining_ms()} ms left)`);
    return true;
});

client.addMethod('confirm', async ({question}) => {
    // A real program would ask its user here, and could ask for more time
    // with invocation.extend_deadline() while the user decides.
    await sleep(50);
    print(`confirm: ${question} -> yes`);
    return true;
});

try {
    await client.open();
    print(`connected to ${client.get_server_identity()?.to_string() ?? ARGV[0]}`);

    const result = await client.call('work', {steps: 3, delay_ms: 50}, {timeoutMsec: 10000});
    print(`work -> done ${result.done}`);
    if (result.done !== 3)
        fail(`work answered ${JSON.stringify(result)}`);

    const answer = await client.call('ask', {question: 'Proceed?'});
    print(`ask -> ${answer}`);
    if (answer !== true)
        fail(`ask answered ${JSON.stringify(answer)}`);

    try {
        await client.call('no-such-method');
        fail('no-such-method was answered');
    } catch (error) {
        if (!(error instanceof GLib.Error) ||
            !error.matches(Tether.RemoteError, Tether.RemoteError.METHOD_NOT_FOUND))
            throw error;
        print(`no-such-method -> refused: ${error.message}`);
    }
} catch (error) {
    fail(error instanceof GLib.Error ? error.message : `${error}\n${error.stack}`);
} finally {
    client.close();
}
