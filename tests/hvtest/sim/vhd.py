"""The virtual hard disk files the simulated host writes, and the bytes a virtual disk holds.

Hyper-V's VHDX layout is not modelled; what a restore test needs is: which bytes a disk holds at
each point of its life (every guest write has content of its own, derived from the disk, the write's
generation and its offset), whether a file is a whole disk or a differencing disk naming a parent,
and a file's size as the export wrote it. Equality of two disks is equality of their contents
(content_hash), never of names or labels.

A file is a header - MAGIC, then JSON (kind, virtual size, parent, the data's ranges), padded to
HEADER bytes, as a VHDX file starts with its own headers - then the data of each range in order,
then zeros (sparse, taking no space) up to the size the file was given: a dynamic disk's file holds
more than its data. A file cut short, or without the header, cannot be read (VhdDamaged), as
Hyper-V cannot open a damaged VHDX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

MAGIC = b"hvsim-vhd\n"
HEADER = 4096

# A disk's content: sorted, disjoint (offset, bytes) runs; what no run covers reads as zeros.
Segments = list[tuple[int, bytes]]


class VhdDamaged(Exception):
    """The file is not a whole virtual hard disk file: no header, or its data cut short."""


@dataclasses.dataclass
class VhdFile:
    kind: str  # "dynamic" (a whole disk) or "differencing" (changes over a parent)
    virtual_size: int
    segments: Segments
    parent: str | None = None


def written_bytes(device: str, generation: int, offset: int, length: int) -> bytes:
    """What one guest write puts on the disk: its own bytes, never those of another write."""
    return hashlib.shake_256(f"{device}:{generation}:{offset}".encode()).digest(length)


def overlay(segments: Segments, offset: int, data: bytes) -> Segments:
    """The content with data written at offset (later writes win)."""
    if not data:
        return list(segments)
    end = offset + len(data)
    kept: Segments = []
    for start, chunk in segments:
        stop = start + len(chunk)
        if stop <= offset or start >= end:
            kept.append((start, chunk))
            continue
        if start < offset:
            kept.append((start, chunk[:offset - start]))
        if stop > end:
            kept.append((end, chunk[end - start:]))
    kept.append((offset, data))
    return _joined(kept)


def _joined(segments: Segments) -> Segments:
    """Runs sorted, and runs that touch joined, so one content has one form."""
    joined: Segments = []
    for start, chunk in sorted(segments, key=lambda s: s[0]):
        if joined and joined[-1][0] + len(joined[-1][1]) == start:
            joined[-1] = (joined[-1][0], joined[-1][1] + chunk)
        else:
            joined.append((start, chunk))
    return joined


def disk_segments(device: str, writes: list, generation: int) -> Segments:
    """The disk's content after its writes up to a generation (writes: (generation, offset, length))."""
    content: Segments = []
    for written, offset, length in sorted(writes, key=lambda w: w[0]):
        if written <= generation:
            content = overlay(content, offset, written_bytes(device, written, offset, length))
    return content


def changed_segments(device: str, writes: list, since: int, upto: int) -> Segments:
    """What a differencing file holds: the bytes at generation upto of every range written after since."""
    content = disk_segments(device, writes, upto)
    changed: Segments = []
    for start, stop in written_ranges(writes, since, upto):
        for run_start, chunk in content:
            low, high = max(start, run_start), min(stop, run_start + len(chunk))
            if low < high:
                changed.append((low, chunk[low - run_start:high - run_start]))
    return _joined(changed)


def written_ranges(writes: list, since: int, upto: int) -> list[tuple[int, int]]:
    """The (start, stop) ranges written after generation since up to upto, merged where they overlap or
    touch: a range written twice is one range (what RCT reports, and what a differencing file holds)."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted((offset, offset + length) for written, offset, length in writes if since < written <= upto):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def content_hash(virtual_size: int, segments: Segments) -> str:
    """The hash of a disk's bytes (zeros where nothing was written), computed from its runs."""
    digest = hashlib.sha256(f"{virtual_size}\n".encode())
    for start, chunk in _joined(list(segments)):
        digest.update(f"{start}:{len(chunk)}\n".encode())
        digest.update(chunk)
    return digest.hexdigest()


def write_file(path: str, vhd: VhdFile, size: int = 0) -> int:
    """Writes a virtual hard disk file of at least size bytes; returns its size."""
    data = b"".join(chunk for _start, chunk in vhd.segments)
    total = max(size, HEADER + len(data))
    header = MAGIC + json.dumps({"kind": vhd.kind, "virtual_size": vhd.virtual_size, "parent": vhd.parent, "size": total,
                                 "ranges": [[start, len(chunk)] for start, chunk in vhd.segments]}).encode()
    if len(header) > HEADER:
        raise ValueError(f"{path}: too many ranges for the simulated header ({len(header)} bytes)")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(header.ljust(HEADER, b" "))
        handle.write(data)
        handle.truncate(total)
    return total


def read_file(path: str) -> VhdFile:
    """Reads a file write_file wrote; VhdDamaged when it is not one, or its data was cut short."""
    with open(path, "rb") as handle:
        header = handle.read(HEADER)
        if len(header) < HEADER or not header.startswith(MAGIC):
            raise VhdDamaged(f"{path} is not a virtual hard disk file (no header)")
        try:
            meta = json.loads(header[len(MAGIC):].decode().rstrip(" "))
        except ValueError as error:
            raise VhdDamaged(f"{path} has a damaged header: {error}") from error
        if os.fstat(handle.fileno()).st_size < int(meta["size"]):
            raise VhdDamaged(f"{path} is cut short: {os.fstat(handle.fileno()).st_size} bytes of {meta['size']}")
        segments: Segments = []
        for start, length in meta["ranges"]:
            chunk = handle.read(length)
            if len(chunk) < length:
                raise VhdDamaged(f"{path} is cut short: its data ends before the range at {start}")
            segments.append((start, chunk))
    return VhdFile(kind=meta["kind"], virtual_size=int(meta["virtual_size"]), segments=segments, parent=meta.get("parent"))
