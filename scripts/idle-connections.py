#!/usr/bin/env python3
"""Idle intercepted connections, measured (docs/benchmark.md).

    scripts/idle-connections.py PROXY CA PID N [AUTH] [REQUEST]

Opens N intercepted TLS connections through the proxy at PROXY (host:port) to
api.test.local:8443 (the bench harness's upstream), trusting CA; with REQUEST=1 (the
default) sends `GET /small` with `Authorization: AUTH` on each; keeps them all open, and
prints the growth of process PID's RSS per 1,000 connections. Start a fresh egret for
each measurement: memory freed earlier stays counted."""
import asyncio, ssl, sys, time

PROXY_HOST, PROXY_PORT = sys.argv[1].split(":")
CA, PID, N = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
AUTH = sys.argv[5] if len(sys.argv) > 5 else "Bearer PLACEHOLDER-123"
REQUEST = (sys.argv[6] if len(sys.argv) > 6 else "1") == "1"
HOST, PORT = "api.test.local", 8443

def rss_kib():
    for line in open(f"/proc/{PID}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def one(ctx, held):
    r, w = await asyncio.open_connection(PROXY_HOST, int(PROXY_PORT))
    w.write(f"CONNECT {HOST}:{PORT} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode())
    await w.drain()
    line = await r.readuntil(b"\r\n\r\n")
    assert b" 200" in line.split(b"\r\n")[0], line
    await w.start_tls(ctx, server_hostname=HOST)
    if not REQUEST:
        held.append((r, w))
        return
    w.write(f"GET /small HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nAuthorization: {AUTH}\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    if length:
        await r.readexactly(length[0])
    else:
        raise SystemExit(f"no content-length: {head!r}")
    held.append((r, w))

async def main():
    ctx = ssl.create_default_context(cafile=CA)
    held = []
    # warm: one connection so leaf caches and pools exist
    await one(ctx, held)
    await asyncio.sleep(1)
    before = rss_kib()
    sem = asyncio.Semaphore(32)
    async def guarded():
        async with sem:
            await one(ctx, held)
    await asyncio.gather(*(guarded() for _ in range(N)))
    await asyncio.sleep(3)
    after = rss_kib()
    per = (after - before) / N * 1000 / 1024
    print(f"connections={N} rss_before_kib={before} rss_after_kib={after} mib_per_1000={per:.2f}")
    for r, w in held:
        w.close()

asyncio.run(main())
