#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""client.py: an asyncio client of the demo service (`tether serve URI`).

    /usr/bin/python3 client.py unix:/tmp/x.sock

Calls `work` and answers the `progress` callbacks it causes, calls `ask`
and answers its `confirm` callback (with a coroutine, as a program that
asks its user would), then makes a call the service refuses. It exits 0
only if every answer is what the service promises, so it doubles as a test.

Needs Debian's /usr/bin/python3 (PyGObject) and Tether's Python overrides
(installed, or `bindings/python` of a source tree on PYTHONPATH).
"""

import asyncio
import sys

import gi
gi.require_version('Tether', '1.0')
from gi.repository import GLib, Tether  # noqa: E402


def on_progress(params, invocation):
    print('progress: step %d of %d (%d ms left)'
          % (params['step'], params['of'], invocation.get_remaining_ms()))
    return True


async def on_confirm(params):
    # A real program would ask its user here, and could ask for more time
    # with invocation.extend_deadline() while the user decides.
    await asyncio.sleep(0.05)
    print('confirm: %s -> yes' % params['question'])
    return True


async def main(uri):
    client = Tether.Client(uri)
    client.add_method('progress', on_progress)
    client.add_method('confirm', on_confirm)

    async with client:
        identity = client.get_server_identity()
        print('connected to', identity.to_string() if identity else uri)

        result = await client.call('work', {'steps': 3, 'delay_ms': 50}, timeout_msec=10000)
        print('work -> done', result['done'])
        if result != {'done': 3}:
            raise SystemExit('client: work answered %r' % (result,))

        answer = await client.call('ask', {'question': 'Proceed?'})
        print('ask ->', 'true' if answer is True else answer)
        if answer is not True:
            raise SystemExit('client: ask answered %r' % (answer,))

        try:
            await client.call('no-such-method')
        except Tether.RemoteCallError as error:
            if not error.matches(Tether.remote_error_quark(), Tether.RemoteError.METHOD_NOT_FOUND):
                raise
            print('no-such-method -> refused:', error.message)
        else:
            raise SystemExit('client: no-such-method was answered')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: %s URI' % sys.argv[0])
    try:
        asyncio.run(main(sys.argv[1]))
    except GLib.Error as error:
        sys.exit('client: %s' % error.message)
