"""Issue 14: canonical encoders and compression levels on per_user result lines.

Run: ``python bench/bench_codec.py [--users 50000]``. Prints, on the same lines (a mix of
floats, ints, small dicts and lists, like workload W's results):

* encode: the standard library's C encoder (btbuild before issue 14) vs orjson vs msgspec,
  each configured for sorted keys; and ``codec.user_line`` (orjson with the checks that keep
  the bytes identical);
* decode: ``json.loads`` per line vs one ``orjson.loads`` per batch (``parse_user_lines``);
* compress: zlib levels 1, 6, 9 (and zstd where installed): CPU and compressed size.
Target (informative): the chosen encoder and level are the fastest that keep shards under
the 900 KB limit with room to spare.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib

from btbuild.storage import codec


def values(count: int) -> list[tuple[str, object]]:
    rng = random.Random(5)
    out: list[tuple[str, object]] = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            value: object = round(rng.uniform(-1e5, 1e5), 2)
        elif kind == 1:
            value = {"hhi": round(rng.random(), 6), "n": rng.randint(5, 20), "top": "I042"}
        elif kind == 2:
            value = [round(rng.gauss(0, 1), 4) for _ in range(5)]
        else:
            value = rng.randint(0, 20)
        out.append((f"u{index:07d}", value))
    return out


def clock(function, *args):  # type: ignore[no-untyped-def]
    start = time.process_time()
    result = function(*args)
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    users = parser.parse_args().users
    pairs = values(users)
    std = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    rows = {"json (C encoder)": lambda: [std([u, v]).encode() for u, v in pairs]}
    try:
        import orjson

        rows["orjson"] = lambda: [
            orjson.dumps([u, v], option=orjson.OPT_SORT_KEYS) for u, v in pairs
        ]
    except ImportError:
        pass
    try:
        import msgspec

        encoder = msgspec.json.Encoder(order="sorted")
        rows["msgspec"] = lambda: [encoder.encode([u, v]) for u, v in pairs]
    except ImportError:
        pass
    rows["codec.user_line"] = lambda: [codec.user_line(u, v) for u, v in pairs]
    print(f"{users} user lines")
    lines: list[bytes] = []
    for name, function in rows.items():
        lines, seconds = clock(function)
        print(f"  encode {name:<18} {seconds / users * 1e6:6.2f} us/line")
    _, per_line = clock(lambda: [json.loads(line) for line in lines])
    _, batched = clock(
        lambda: [codec.parse_user_lines(lines[i : i + 5000]) for i in range(0, users, 5000)]
    )
    print(f"  decode json.loads per line   {per_line / users * 1e6:6.2f} us/line")
    print(f"  decode parse_user_lines      {batched / users * 1e6:6.2f} us/line")
    raw = b"\n".join(lines) + b"\n"
    for level in (1, 6, 9):
        data, seconds = clock(zlib.compress, raw, level)
        _, back = clock(zlib.decompress, data)
        print(
            f"  zlib level {level}  {seconds / users * 1e6:6.2f} us/line  {len(data) / len(raw):5.1%} of raw  inflate {back / users * 1e6:5.2f} us/line"
        )
    try:
        import zstandard

        for level in (1, 3):
            data, seconds = clock(zstandard.ZstdCompressor(level=level).compress, raw)
            print(
                f"  zstd level {level}  {seconds / users * 1e6:6.2f} us/line  {len(data) / len(raw):5.1%} of raw"
            )
    except ImportError:
        pass


if __name__ == "__main__":
    main()
