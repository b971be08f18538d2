"""The simulator's disk contents (tests/hvtest/sim/vhd.py): what a restore test compares."""

from __future__ import annotations

import random

import pytest

from hvtest.sim import vhd

DEVICE = "DEV\\0\\0\\D"


def brute_force(writes: list, generation: int, size: int) -> bytes:
    """The same content, the slow way: every write applied to a whole bytearray."""
    disk = bytearray(size)
    for written, offset, length in sorted(writes, key=lambda w: w[0]):
        if written <= generation:
            disk[offset:offset + length] = vhd.written_bytes(DEVICE, written, offset, length)
    return bytes(disk)


def as_bytes(segments: vhd.Segments, size: int) -> bytes:
    disk = bytearray(size)
    for start, chunk in segments:
        disk[start:start + len(chunk)] = chunk
    return bytes(disk)


def random_writes(seed: int, count: int = 40, size: int = 4096) -> list:
    rng = random.Random(seed)
    return [(g, rng.randrange(0, size - 64), rng.randrange(1, 64)) for g in range(1, count + 1)]


@pytest.mark.parametrize("seed", range(5))
def test_overlapping_writes_give_the_bytes_a_whole_disk_would_hold(seed: int) -> None:
    writes = random_writes(seed)
    for generation in (0, 7, 23, 40):
        assert as_bytes(vhd.disk_segments(DEVICE, writes, generation), 4096) == brute_force(writes, generation, 4096)


@pytest.mark.parametrize("seed", range(5))
def test_a_chain_of_changes_merged_onto_the_full_copy_is_the_disk_at_the_last_backup(seed: int) -> None:
    """Full at 10, differences at 25 and 40: each merged in order gives the disk as it was."""
    writes = random_writes(seed)
    restored = vhd.disk_segments(DEVICE, writes, 10)
    for since, upto in ((10, 25), (25, 40)):
        for start, chunk in vhd.changed_segments(DEVICE, writes, since, upto):
            restored = vhd.overlay(restored, start, chunk)
        assert vhd.content_hash(4096, restored) == vhd.content_hash(4096, vhd.disk_segments(DEVICE, writes, upto))
    skipped = vhd.disk_segments(DEVICE, writes, 10)
    for start, chunk in vhd.changed_segments(DEVICE, writes, 25, 40):
        skipped = vhd.overlay(skipped, start, chunk)
    assert vhd.content_hash(4096, skipped) != vhd.content_hash(4096, vhd.disk_segments(DEVICE, writes, 40)), \
        "a chain missing its middle difference is not the disk"


def test_the_same_bytes_split_otherwise_hash_alike_and_other_bytes_do_not() -> None:
    whole = [(0, b"abcdef")]
    assert vhd.content_hash(10, whole) == vhd.content_hash(10, [(0, b"abc"), (3, b"def")])
    assert vhd.content_hash(10, whole) != vhd.content_hash(10, [(0, b"abcdeg")])
    assert vhd.content_hash(10, whole) != vhd.content_hash(11, whole), "the virtual size is part of the disk"
    assert vhd.written_bytes(DEVICE, 1, 0, 16) != vhd.written_bytes(DEVICE, 2, 0, 16), "each write has bytes of its own"


def test_a_file_reads_back_and_a_cut_or_foreign_file_is_damaged(tmp_path) -> None:
    path = str(tmp_path / "Virtual Hard Disks" / "os.vhdx")
    written = vhd.VhdFile("differencing", 2**30, [(2**20, b"x" * 100), (2**21, b"y" * 50)], parent="C:\\VMs\\web01\\os.vhdx")
    size = vhd.write_file(path, written, size=2**20)
    assert size == 2**20 and (tmp_path / "Virtual Hard Disks" / "os.vhdx").stat().st_size == 2**20
    assert vhd.read_file(path) == written
    with open(path, "r+b") as handle:
        handle.truncate(size - 1)
    with pytest.raises(vhd.VhdDamaged, match="cut short"):
        vhd.read_file(path)
    (tmp_path / "other.vhdx").write_bytes(b"\0" * 8192)
    with pytest.raises(vhd.VhdDamaged, match="no header"):
        vhd.read_file(str(tmp_path / "other.vhdx"))


def test_a_range_written_twice_is_held_once_in_a_differencing_file() -> None:
    """The same MiB written twice since the base: a differencing file of 1 MiB, not 2 (a role test's export was 2 MiB)."""
    writes = [(1, 0, 2**20), (2, 0, 2**20), (3, 2**19, 2**20)]
    changed = vhd.changed_segments(DEVICE, writes, 0, 2)
    assert [(start, len(chunk)) for start, chunk in changed] == [(0, 2**20)]
    assert sum(len(chunk) for _start, chunk in vhd.changed_segments(DEVICE, writes, 0, 3)) == 2**20 + 2**19
    assert as_bytes(changed, 2**20) == brute_force(writes, 2, 2**20)
