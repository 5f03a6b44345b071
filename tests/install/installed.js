// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Run by test-installed.sh with XDG_DATA_DIRS, GI_TYPELIB_PATH and
// LD_LIBRARY_PATH pointing into the DESTDIR: `gi://Tether` brings the
// installed override (DATADIR/gjs-1.0/overrides/Tether.js, found through
// GJS's default search path), and the installed ES module imported by
// its file URI is the same Tether. Makes one call over a Unix socket.
//
//   gjs -m installed.js DATADIR SOCKET-PATH

import GLib from 'gi://GLib';
import System from 'system';
import Tether from 'gi://Tether?version=1.0';

const [datadir, path] = ARGV;
const uri = `unix:${path}`;

function fail(message) {
    printerr(`gjs: ${message}`);
    System.exit(1);
}

GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 10, () => fail('timed out'));

if (typeof Tether.toVariant !== 'function' || typeof Tether.Client.prototype.call !== 'function')
    fail('gi://Tether came without the override');
const {default: viaFile} = await import(`file://${datadir}/tether-1/gjs/tether.js`);
if (viaFile !== Tether)
    fail('the installed ES module is not the gi://Tether namespace');

const server = new Tether.Server();
server.addMethod('echo', params => params);
server.listen(uri);
const client = new Tether.Client({uri});
try {
    await client.open();
    const answer = await client.call('echo', {n: 42});
    if (answer?.n !== 42)
        fail(`echo answered ${JSON.stringify(answer)}`);
} catch (error) {
    fail(error.message);
} finally {
    client.close();
    server.close();
}
print('GJS: gi://Tether with the installed override, and the installed ES module');
