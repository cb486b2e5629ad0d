"""Profile the server under hot-thread fan-out with py-spy (`pip install py-spy`).

    python -m bench.profile_fanout [SUBSCRIBERS] [POSTS_PER_S] [SECONDS] [OUT.svg|OUT.txt]

Starts `realtime serve` pinned to CPU 0 against REALTIME_DATABASE_URL, subscribes the given
number of connections to one post, posts at the given rate and records the server with
`py-spy record` for the given time (a flame graph, or `--format raw` folded stacks for .txt).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import runner


def main() -> None:
    args = sys.argv[1:]
    n = int(args[0]) if args else 1000
    rate = float(args[1]) if len(args) > 1 else 50.0
    seconds = float(args[2]) if len(args) > 2 else 15.0
    out = args[3] if len(args) > 3 else "/tmp/realtime-fanout.svg"
    runner.raise_fd_limit()
    env = {**os.environ, "PYTHONPATH": str(runner.ROOT)}
    url = env.pop("REALTIME_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = runner.Context(url=url, quick=False, plan=runner.Plan.for_run(False), tmp=Path(tmp),
                             run_id=uuid.uuid4().hex[:8], report=runner.Report(), child_env=env)
        slug = ctx.slug("profile")
        runner.create_posts(ctx, [slug])
        port = runner.free_port()
        try:
            server = ctx.realtime("profiled", port)
            subs = ctx.subscribers([("127.0.0.1", port)], [f"post:{slug}"], n)
            poster = ctx.poster([("127.0.0.1", port)], [slug])
            fmt = ["--format", "raw"] if out.endswith(".txt") else []
            spy = subprocess.Popen(["py-spy", "record", "-o", out, "--pid", str(server.proc.pid),
                                    "--duration", str(int(seconds)), "--rate", "200", *fmt])
            time.sleep(0.5)
            window = runner.Window([server], [*subs, poster])
            with window.measure():
                posted = poster.call(f"step {rate} {seconds}", seconds + 60)
            time.sleep(1)
            got = runner.collect(ctx, subs, posted["t0"])
            spy.wait(60)
            print(f"{got.count / posted['seconds']:,.0f} deliveries/s, p50 {got.pct(0.5):.1f} ms,"
                  f" p99 {got.pct(0.99):.1f} ms, server CPU {window.server_cpu:.0f} %,"
                  f" generators {window.gen_cpu:.0f} %, POST p50 {posted['http_p50_ms']:.1f} ms;"
                  f" profile in {out}")
        finally:
            ctx.release()
            runner.cleanup(ctx)


if __name__ == "__main__":
    main()
