"""Comments from elsewhere: one module per source format, all streaming.

`wordpress` (WXR) and `disqus` read another system's XML export with defusedxml's iterparse
in two passes: the first checks the whole file (so a malformed, truncated or hostile file
imports nothing), the second imports it thread by thread. `jsonl` is our own export format.
`run` drives an import and `commands` are the `realtime import` and `realtime export`
commands.
"""
