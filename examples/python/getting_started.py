# SPDX-License-Identifier: LGPL-2.1-or-later
import asyncio
import sys

import gi
gi.require_version("Tether", "1.0")
from gi.repository import Tether


def on_progress(params):
    print(f"progress: {params['step']} of {params['of']}")
    return True


async def main(uri):
    client = Tether.Client.new(uri)
    client.add_method("progress", on_progress)
    await client.open()
    result = await client.call("work", {"steps": 3, "delay_ms": 200})
    print("result:", result)
    client.close()


asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/tether-demo.sock"))
