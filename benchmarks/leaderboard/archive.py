"""Carry a leaderboard's run records from one machine (or session) to the next.

A leaderboard's store holds one record per finished run (``runs/<run_id>.json``: status, error and
scores) and its draws (``results/<run_id>.npz``). ``ppl leaderboard`` resumes by skipping every run
that has a record, so the records alone are enough to go on where a stopped leaderboard left off,
and to score and rank what it has run. ``pack`` writes them into one gzipped JSON-lines file small
enough to commit; ``unpack`` puts them back into a store. The draws are not carried: a run unpacked
from an archive is scored, but its posterior's comparison report needs the run again.

    python -m benchmarks.leaderboard.archive pack runs/leaderboard-first benchmarks/leaderboard/first-runs.jsonl.gz
    python -m benchmarks.leaderboard.archive unpack benchmarks/leaderboard/first-runs.jsonl.gz runs/leaderboard-first
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from benchmarks.entry import run_benchmark
from inference.sweep import write_record
from ppl_models.atomic import atomic_write


def pack(store: str | Path, archive: str | Path) -> int:
    """Write every run record of ``store`` into ``archive``, one JSON object per line in run-id
    order. Returns how many."""
    paths = sorted((Path(store) / "runs").glob("*.json"))
    if not paths:
        raise ValueError(f"{store} holds no run record (no runs/*.json)")
    lines = [json.dumps(json.loads(p.read_text())) + "\n" for p in paths]
    with atomic_write(Path(archive), "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
        z.write("".join(lines).encode())
    return len(lines)


def unpack(archive: str | Path, store: str | Path) -> tuple[int, int]:
    """Write the records of ``archive`` into ``store``'s ``runs/``, keeping any record the store
    already has (a run made here is never replaced by an archived one). Returns (written, kept)."""
    with gzip.open(archive, "rt") as f:
        records = [json.loads(line) for line in f if line.strip()]
    folder = Path(store) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for record in records:
        if not (folder / f"{record['run_id']}.json").exists():
            write_record(Path(store), record)
            written += 1
    return written, len(records) - written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leaderboard.archive",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="a store's run records into one .jsonl.gz")
    p.add_argument("store")
    p.add_argument("archive")
    u = commands.add_parser("unpack", help="an archive's run records into a store (existing ones kept)")
    u.add_argument("archive")
    u.add_argument("store")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            print(f"{pack(args.store, args.archive)} run records from {args.store} written to {args.archive}")
        else:
            written, kept = unpack(args.archive, args.store)
            print(f"{written} run records written to {args.store}/runs ({kept} already there, kept)")
    except (OSError, ValueError, KeyError) as error:  # a missing file, a corrupt archive, a record without run_id
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_benchmark(main)
