"""Running the model server until SIGTERM or SIGINT.

Binding to port 0 lets the kernel choose a free port, which tests and benchmarks need to
run several servers side by side without collisions; the chosen port is printed on
stdout (``modelserver listening on http://HOST:PORT``) and, with ``port_file``, written to
a file once the socket is listening, so a parent process can poll for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from aiohttp import web

from modelrollout.modelserver.app import ServerConfig, create_app


async def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    port_file: Path | None = None,
) -> None:
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound = int(runner.addresses[0][1])
    print(f"modelserver listening on http://{host}:{bound}", flush=True)
    if port_file is not None:
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(f"{bound}\n")
        tmp.replace(port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        print("modelserver stopped", file=sys.stderr, flush=True)
