#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Steady load from several reconnecting Tether clients (issue #11).

    /usr/bin/python3 reconnect_load.py URI CA CLIENTS SECONDS

Each client is a Tether.Client with reconnect on, calling the demo
service's `sleep` (20 ms) in a loop through the GI bindings, one call at
a time. Prints `ready` once every client has made a call, then, after
SECONDS, one JSON line: calls that succeeded, every failure, and how
often the clients were sent away and came back. Debian's python3 with
the build tree's typelib (GI_TYPELIB_PATH, LD_LIBRARY_PATH).
"""

import asyncio
import json
import os
import sys

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.join(SOURCE_ROOT, 'bindings', 'python'))

import gi  # noqa: E402
gi.require_version('Tether', '1.0')
from gi.repository import Gio, Tether  # noqa: E402


async def one_client(uri, database, stop, stats, first_call):
    client = Tether.Client(uri, reconnect=True, reconnect_min_delay=50,
                           reconnect_max_delay=1000, tls_database=database)
    client.connect('going-away', lambda c, ms: stats.__setitem__('going_away',
                                                                  stats['going_away'] + 1))
    client.connect('reconnected', lambda c: stats.__setitem__('reconnected',
                                                               stats['reconnected'] + 1))
    await client.open()
    try:
        while not stop.is_set():
            try:
                await client.call('sleep', {'ms': 20}, timeout_msec=15000)
                stats['ok'] += 1
                first_call.set()
            except Exception as e:   # noqa: BLE001 — every failure is the result
                stats['failures'].append(str(e))
    finally:
        client.close()


async def main(uri, ca, n, seconds):
    database = Gio.TlsFileDatabase.new(ca)
    stop = asyncio.Event()
    stats = {'ok': 0, 'failures': [], 'going_away': 0, 'reconnected': 0}
    firsts = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.ensure_future(one_client(uri, database, stop, stats, firsts[i]))
             for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 30)
    print('ready', flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    print(json.dumps(stats), flush=True)


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
