#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tour.py: a client that tries each thing docs/python.md explains.

    /usr/bin/python3 tour.py unix:/tmp/tether-demo.sock

Works with any service that has the demo service's `work` and `ask`
(`tether serve`, examples/c/desktop-service, examples/*/service.*):
callbacks, call options, a deadline, two ways to cancel, and errors. It
exits 0 only if each outcome is the one the guide promises, so it
doubles as a test.
"""

import asyncio
import sys
import threading

import gi
gi.require_version("Tether", "1.0")
from gi.repository import GLib, Gio, Tether  # noqa: E402


def expect(condition, what):
    if not condition:
        raise SystemExit(f"tour: expected {what}")


# snippet: callbacks
def on_progress(params, invocation):
    # The invocation tells how long the call that caused this one has left.
    print(f"progress: step {params['step']} of {params['of']}"
          f" ({invocation.get_remaining_ms()} ms left)")
    return True


async def on_confirm(params):
    await asyncio.sleep(0.05)           # a real program asks its user here
    print(f"confirm: {params['question']} -> yes")
    return True
# end snippet: callbacks


async def main(uri):
    # snippet: client
    client = Tether.Client(uri)
    client.add_method("progress", on_progress, with_invocation=True)
    client.add_method("confirm", on_confirm)
    async with client:                  # open() now, close() at the end
        await tour(client)
    # end snippet: client


async def tour(client):
    # snippet: options
    result = await client.call("work", {"steps": 2, "delay_ms": 10}, timeout_msec=5000)
    print("work ->", result)
    answer = await client.call("ask", {"question": "Proceed?"})
    print("ask ->", answer)
    # end snippet: options
    expect(result == {"done": 2} and answer is True, "work and ask to succeed")

    # snippet: deadline
    try:
        await client.call("work", {"steps": 1, "delay_ms": 5000}, timeout_msec=200)
    except TimeoutError as error:   # Tether.TimeoutError, also a GLib.Error
        print("work -> no answer in time:", error.message)
    # end snippet: deadline
    else:
        expect(False, "a timeout")

    # snippet: cancel-task
    task = asyncio.create_task(client.call("work", {"steps": 1, "delay_ms": 5000}))
    await asyncio.sleep(0.1)
    task.cancel()                   # the service gets rpc.cancel
    try:
        await task
    except asyncio.CancelledError:
        print("work -> cancelled with its task")
    # end snippet: cancel-task
    else:
        expect(False, "the task to be cancelled")

    # snippet: cancel-cancellable
    cancellable = Gio.Cancellable()
    # cancel() is the one Tether-related call that is safe from any thread.
    threading.Timer(0.1, cancellable.cancel).start()
    try:
        await client.call("work", {"steps": 1, "delay_ms": 5000}, cancellable=cancellable)
    except GLib.Error as error:
        if not error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED):
            raise
        print("work -> cancelled from another thread:", error.message)
    # end snippet: cancel-cancellable
    else:
        expect(False, "a cancellation")

    # snippet: errors
    try:
        await client.call("work", {"steps": "three"})
    except Tether.RemoteCallError as error:     # the service answered an error
        if error.code != Tether.RemoteError.INVALID_PARAMS:
            raise
        print(f"work {{steps: 'three'}} -> refused ({error.code}): {error.message}")
    # end snippet: errors
    else:
        expect(False, "-32602")
    try:
        await client.call("no-such-method")
    except Tether.RemoteCallError as error:
        expect(error.code == Tether.RemoteError.METHOD_NOT_FOUND, "-32601")
        print("no-such-method -> refused:", error.message)
    else:
        expect(False, "-32601")


# snippet: run
if __name__ == "__main__":
    Tether.run(main(sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/tether-demo.sock"))
# end snippet: run
