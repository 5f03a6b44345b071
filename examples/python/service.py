#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""service.py: a Tether service in Python, shaped like the demo service.

    /usr/bin/python3 service.py unix:/tmp/tether-demo.sock

Methods, open to authenticated peers (on a Unix socket: any local user
the kernel names):

    work {steps, delay_ms}  calls the client's progress {step, of} once per
                            step, delay_ms apart; answers {done: steps}
    ask {question}          asks the client's confirm {question}; answers
                            what the client's user said

Its first line on stdout is `listening on URI`; SIGINT and SIGTERM stop
it cleanly. docs/python.md walks through it.
"""

import asyncio
import signal
import sys

import gi
gi.require_version("Tether", "1.0")
from gi.repository import Tether  # noqa: E402


# snippet: handlers
def number(params, name, default, maximum):
    value = (params or {}).get(name, default)
    if type(value) is not int or not 0 <= value <= maximum:
        raise Tether.RemoteCallError(Tether.RemoteError.INVALID_PARAMS,
                                     f"{name} must be an integer from 0 to {maximum}")
    return value


async def work(params, invocation):
    steps = number(params, "steps", 3, 1000)
    delay_ms = number(params, "delay_ms", 100, 60000)
    try:
        for step in range(1, steps + 1):
            await asyncio.sleep(delay_ms / 1000)
            await invocation.call_peer("progress", {"step": step, "of": steps})
    except asyncio.CancelledError:
        # The client cancelled, its deadline passed, or it left: Tether
        # cancels this coroutine (and the callback in flight) and answers.
        print(f"service: work cancelled at step {step} of {steps}", file=sys.stderr)
        raise
    return {"done": steps}


async def ask(params, invocation):
    question = (params or {}).get("question")
    if not isinstance(question, str):
        raise Tether.RemoteCallError(Tether.RemoteError.INVALID_PARAMS,
                                     "question must be a string")
    return await invocation.call_peer("confirm", {"question": question})
# end snippet: handlers


# snippet: main
async def main(uri):
    server = Tether.Server()
    server.add_method("work", work, with_invocation=True)
    server.add_method("ask", ask, with_invocation=True)
    server.listen(uri)      # inside the running loop: it serves while the loop runs
    print("listening on", server.get_uris()[0], flush=True)

    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()          # closes the connections and removes the socket


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/tether-demo.sock"))
# end snippet: main
