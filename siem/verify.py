"""Verify an audit chain from streamed syslog records alone (no database, standard library only).

Usage: `python siem/verify.py FILE…` or `python manage.py siem_verify FILE…`. Each line of the
files is one RFC 5424 record as the portal streamed it (a leading octet count, RFC 6587 framing,
is accepted too). For every chain (owner), in seq order:

- the record's MSG (after the UTF-8 BOM) must hash (SHA-256) to its structured-data `hash`, and
  the MSG's own `seq`, `chain` and `prev_hash` must equal the structured data's;
- each record's `prev` must be the hash of the record before it, with no seq missing;
- a record received twice (the same seq and hash: a batch sent again after a connection or a
  worker died) is counted and ignored;
- the first record either starts the chain (seq 1, prev = 64 zeros) or is reported as the
  anchor the receiver started from (the stream was configured later, or the oldest records
  were purged): the receiver keeps that hash to check the next batches against.

Exit status 0 when every chain verifies, 1 at the first break of any chain.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field

GENESIS = "0" * 64
SD_ID = "audit@32473"
_RECORD = re.compile(r"^(?:\d+ )?<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ ")
_SD = re.compile(r"\[" + re.escape(SD_ID) + r'((?: [a-z_]+="(?:[^"\\\]]|\\.)*")*)\]')
_PARAM = re.compile(r'([a-z_]+)="((?:[^"\\\]]|\\.)*)"')


@dataclass
class Chain:
    chain: str
    count: int = 0
    first_seq: int = 0
    anchor: str = ""
    last_seq: int = 0
    last_hash: str = ""
    broken: str = ""
    duplicates: int = 0
    seen: dict[int, str] = field(default_factory=dict)


@dataclass
class Result:
    chains: dict[str, Chain] = field(default_factory=dict)
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.chains) and not any(c.broken for c in self.chains.values())


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse(line: str) -> tuple[dict[str, str], str] | None:
    """Return (structured-data params, MSG) of one record, or None when it is no audit record."""
    head = _RECORD.match(line)
    if head is None:
        return None
    sd = _SD.match(line, head.end())
    if sd is None:
        return None
    params = {k: _unescape(v) for k, v in _PARAM.findall(sd.group(1))}
    message = line[sd.end() :].removeprefix(" ").removeprefix("\ufeff")
    return params, message


def verify_lines(lines) -> Result:
    """Check every record of `lines`; return each chain's span and first break."""
    result = Result()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        parsed = parse(line) if line else None
        if parsed is None:
            result.skipped += 1
            continue
        params, message = parsed
        chain = result.chains.setdefault(params.get("chain", "?"), Chain(params.get("chain", "?")))
        if chain.broken:
            continue
        try:
            seq = int(params["seq"])
            content = json.loads(message)
        except (KeyError, ValueError):
            chain.broken = f"line {number}: not a readable audit record"
            continue
        digest = hashlib.sha256(message.encode("utf-8")).hexdigest()
        where = f"line {number}, seq {seq}"
        if (
            chain.count
            and seq <= chain.last_seq
            and chain.seen.get(seq) == digest == params.get("hash")
        ):
            chain.duplicates += 1  # sent again after a worker or connection died: harmless
            continue
        if digest != params.get("hash"):
            chain.broken = f"{where}: content changed (its hash does not match)"
        elif (
            content.get("seq") != seq
            or str(content.get("chain")) != chain.chain
            or content.get("prev_hash") != params.get("prev")
        ):
            chain.broken = f"{where}: the header does not match the record"
        elif chain.count == 0:
            chain.first_seq = seq
            if seq == 1 and params["prev"] != GENESIS:
                chain.broken = f"{where}: the first event does not start from genesis"
            chain.anchor = params["prev"]
        elif seq != chain.last_seq + 1:
            chain.broken = f"{where}: records missing before it (after seq {chain.last_seq})"
        elif params["prev"] != chain.last_hash:
            chain.broken = f"{where}: link broken (prev is not the hash of the record before)"
        if not chain.broken:
            chain.count += 1
            chain.last_seq, chain.last_hash = seq, params["hash"]
            chain.seen[seq] = digest
    return result


def report(result: Result) -> list[str]:
    lines = []
    for chain in result.chains.values():
        if chain.broken:
            lines.append(f"chain {chain.chain}: BROKEN at {chain.broken}")
            continue
        start = (
            "from genesis"
            if chain.first_seq == 1
            else f"anchored at seq {chain.first_seq} on prev {chain.anchor}"
        )
        lines.append(
            f"chain {chain.chain}: {chain.count} records, seq {chain.first_seq}-{chain.last_seq} "
            f"{start}, verified; last hash {chain.last_hash}"
            + (f" ({chain.duplicates} duplicate(s) ignored)" if chain.duplicates else "")
        )
    if not result.chains:
        lines.append("No audit records found.")
    if result.skipped:
        lines.append(f"{result.skipped} line(s) were not audit records and were skipped.")
    return lines


def main(paths: list[str]) -> int:
    def lines():
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                yield from handle

    result = verify_lines(lines())
    print("\n".join(report(result)))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
