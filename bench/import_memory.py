"""Scenario 12: importing a large export in bounded memory.

A WordPress (WXR) and a Disqus export of a made-up site are generated into the run's
temporary directory (500 MB each; 8 MB with --quick), then imported by `python -m realtime
import` as a separate process. Its peak resident memory comes from the kernel
(`wait4`'s ru_maxrss), so no sample can miss the peak. The posts land under the run's
`bench-` slugs and are removed with the others at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from bench.runner import ROOT, Context, fmt, table

FULL_BYTES = 500 * 10**6
QUICK_BYTES = 8 * 10**6
TARGET_MB = 200
COMMENTS_PER_POST = 200
BODY = ("I have been reading this blog for years and this is the first time I comment: the"
        " point about <em>evening hours</em> is exactly right, and the numbers from the trial"
        " month back it up. Thank you for writing it up &amp; for the <a href=\"https://"
        "example.org/minutes\">minutes</a>.\n\nA second paragraph, as people write them. ")


def write_wxr(out: IO[str], prefix: str, size: int) -> int:
    """A WXR file of about `size` bytes; returns the number of comments."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:wp='
              '"http://wordpress.org/export/1.2/"><channel><title>Bench</title>'
              "<link>https://bench.example</link>"
              "<wp:base_blog_url>https://bench.example</wp:base_blog_url>\n")
    post = comments = 0
    while out.tell() < size:
        post += 1
        out.write(f"<item><title>Post {post}</title><link>https://bench.example/{prefix}-{post}/"
                  f"</link><wp:post_type>post</wp:post_type>\n")
        for n in range(COMMENTS_PER_POST):
            comments += 1
            parent = comments - 1 if n % 4 else 0  # every fourth starts a thread of replies
            out.write(
                f"<wp:comment><wp:comment_id>{comments}</wp:comment_id>"
                f"<wp:comment_author><![CDATA[Reader {comments % 997}]]></wp:comment_author>"
                f"<wp:comment_author_email>r{comments % 997}@bench.example"
                "</wp:comment_author_email><wp:comment_author_url>https://bench.example/"
                f"</wp:comment_author_url><wp:comment_author_IP>192.0.2.{comments % 250}"
                "</wp:comment_author_IP><wp:comment_date>2020-03-01 10:00:00</wp:comment_date>"
                f"<wp:comment_date_gmt>2020-03-01 09:{n % 60:02d}:00</wp:comment_date_gmt>"
                f"<wp:comment_content><![CDATA[{BODY}{comments}]]></wp:comment_content>"
                f"<wp:comment_approved>{'spam' if n % 50 == 7 else 1}</wp:comment_approved>"
                f"<wp:comment_type></wp:comment_type><wp:comment_parent>{parent}"
                "</wp:comment_parent></wp:comment>\n")
        out.write("</item>\n")
    out.write("</channel></rss>\n")
    return comments


def write_disqus(out: IO[str], prefix: str, size: int) -> int:
    """A Disqus export of about `size` bytes, its posts interleaved across threads as Disqus
    lists them; returns the number of posts."""
    threads = max(1, size // (COMMENTS_PER_POST * 900))
    out.write('<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com"'
              ' xmlns:dsq="http://disqus.com/disqus-internals">\n')
    for t in range(1, threads + 1):
        out.write(f'<thread dsq:id="t{t}"><link>https://bench.example/{prefix}-{t}/</link>'
                  f"<title>Thread {t}</title></thread>\n")
    posts = 0
    while out.tell() < size:
        posts += 1
        thread = posts % threads + 1
        parent = f'<parent dsq:id="{posts - threads}"/>' if posts > threads and posts % 3 else ""
        out.write(
            f'<post dsq:id="{posts}"><message><![CDATA[<p>{BODY}{posts}</p>]]></message>'
            "<createdAt>2020-03-01T10:00:00Z</createdAt><isDeleted>false</isDeleted>"
            f"<isSpam>false</isSpam><author><name>Reader {posts % 997}</name>"
            f"<email>r{posts % 997}@bench.example</email></author>"
            f"<ipAddress>192.0.2.{posts % 250}</ipAddress>"
            f'<thread dsq:id="t{thread}"/>{parent}</post>\n')
    out.write("</disqus>\n")
    return posts


def run_import(ctx: Context, kind: str, path: Path) -> dict[str, Any]:
    """`python -m realtime import KIND PATH` to completion: seconds and peak RSS in MB."""
    env = {**ctx.child_env, "REALTIME_DATABASE_URL": ctx.url, "REALTIME_LOG_LEVEL": "warning"}
    log = open(ctx.tmp / f"import-{kind}.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "realtime", "import", kind, str(path)],
                               cwd=ROOT, env=env, stdout=log, stderr=log)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - started
    log.close()
    output = (ctx.tmp / f"import-{kind}.log").read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"import {kind} failed: {output[-1500:]}")
    return {"seconds": took, "peak_mb": usage.ru_maxrss / 1024, "report": output}


def scenario_12(ctx: Context, results: dict[str, Any]) -> None:
    """Import a generated WXR and Disqus export; report time and peak memory."""
    size = QUICK_BYTES if ctx.quick else FULL_BYTES
    rows = []
    for kind, write in (("wordpress", write_wxr), ("disqus", write_disqus)):
        path = ctx.tmp / f"export-{kind}.xml"
        with path.open("w") as out:
            comments = write(out, ctx.slug(f"s12-{kind}"), size)
        megabytes = path.stat().st_size / 1e6
        found = run_import(ctx, kind, path)
        path.unlink()
        results[f"s12-{kind}"] = found["peak_mb"]
        rows.append([kind, fmt(megabytes, 0), f"{comments:,}", fmt(found["seconds"], 1),
                     fmt(comments / found["seconds"], 0), fmt(found["peak_mb"], 0)])
        ctx.report.target(f"peak memory importing a {megabytes:,.0f} MB {kind} export",
                          f"< {TARGET_MB} MB", f"{fmt(found['peak_mb'], 0)} MB",
                          found["peak_mb"] < TARGET_MB)
    ctx.report.section(
        "12. Import peak memory",
        "`realtime import wordpress|disqus FILE` on generated exports (WXR: one item per post"
        f" with {COMMENTS_PER_POST} comments, a quarter of them starting reply chains, 2 % spam;"
        " Disqus: the same comments in one flat list interleaved across threads, as Disqus"
        " writes them). Each import reads the file twice (a check, then the threads),"
        " commits one transaction per thread and sends one reset per thread; the Disqus"
        " importer spools its posts to sorted temporary files. Peak RSS is the import"
        " process's `ru_maxrss`.\n\n"
        + table(["format", "file MB", "comments", "seconds", "comments/s", "peak RSS MB"], rows))
