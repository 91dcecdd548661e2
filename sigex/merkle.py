"""RFC 9162 Merkle tree hashing, proofs and their verification; pure functions.

The one Merkle tree in sigex: the envelope's field commitments (``sigex.envelope``)
and the access log (``sigex.audit``) both hash, prove and verify with it, and
``tests/unit/platform/test_merkle.py`` checks it against RFC 6962's published
test vectors as well as against the RFC's recursive definition.

A leaf hash is SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left ||
right), the empty tree's root SHA-256 of nothing. A tree of n > 1 leaves splits
at k, the largest power of two below n. Proof construction works over any
``RangeHasher`` (a function giving the root of leaves [start, end)), so the
store can answer it from the subtree hashes it keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sigex.errors import SigexError

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(SigexError):
    """A proof asked for leaves or sizes that are not in the tree."""


#: The root of leaves [start, end) of the tree.
RangeHasher = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def is_power_of_two(size: int) -> bool:
    return size > 0 and size & (size - 1) == 0


def root_of_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root over a list of leaf hashes (for small trees and tests)."""
    builder = TreeBuilder()
    for value in leaf_hashes:
        builder.add(value)
    return builder.root()


@dataclass(slots=True)
class TreeBuilder:
    """Builds a tree leaf by leaf, keeping only the perfect subtrees on its right edge.

    ``stack`` holds (level, hash) of the perfect subtrees whose sizes are the
    binary digits of ``size``, largest first. ``add`` returns the perfect
    subtrees it completed, as (level, index, hash), for a store to keep.
    """

    size: int = 0
    stack: list[tuple[int, bytes]] = field(default_factory=list)

    def add(self, value: bytes) -> list[tuple[int, int, bytes]]:
        completed: list[tuple[int, int, bytes]] = []
        level, current = 0, value
        position = self.size
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            current = node_hash(left, current)
            level += 1
            completed.append((level, position >> level, current))
        self.stack.append((level, current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        current = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            current = node_hash(left, current)
        return current

    def copy(self) -> TreeBuilder:
        return TreeBuilder(self.size, list(self.stack))


def right_edge(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up a tree of ``size`` leaves, left first."""
    parts: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            parts.append((level, start >> level))
            start += 1 << level
    return parts


def inclusion_proof(index: int, size: int, range_hash: RangeHasher) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise MerkleError("inclusion proof: leaf index outside the tree")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end))
            end = start + k
        else:
            path.append(range_hash(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, range_hash: RangeHasher) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[0:new_size])."""
    if not 0 <= old_size <= new_size:
        raise MerkleError("consistency proof: sizes out of order")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, complete = 0, new_size, True
    m = old_size
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            proof.append(range_hash(start + k, end))
            end = start + k
        else:
            proof.append(range_hash(start, start + k))
            m -= k
            start += k
            complete = False
    if not complete:
        proof.append(range_hash(start, end))
    proof.reverse()
    return proof


def root_from_inclusion(
    entry_hash: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes | None:
    """The root an inclusion path implies (RFC 9162 section 2.1.3.2), None if it is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, current = index, size - 1, entry_hash
    for sibling in path:
        if sn == 0:
            return None  # longer than the tree is deep
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return current if sn == 0 else None  # not shorter than the tree is deep either


def verify_inclusion(
    entry_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: ``entry_hash`` is leaf ``index`` of the tree with ``root``."""
    return root_from_inclusion(entry_hash, index, size, path) == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if is_power_of_two(old_size):
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_root = second_root = path[0]
    for value in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_root = node_hash(value, first_root)
            second_root = node_hash(value, second_root)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            second_root = node_hash(second_root, value)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first_root == old_root and second_root == new_root


def root_and_paths(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over ``leaf_hashes`` (at least one) and every leaf's inclusion path at once.

    For a sealer that proves every leaf of a small tree: one pass, each interior
    node hashed once, paths in RFC 9162 order (leaf side first).
    """
    count = len(leaf_hashes)
    if count == 0:
        raise MerkleError("a tree to prove leaves of needs at least one leaf")
    if count == 1:
        return leaf_hashes[0], [[]]
    split = split_point(count)
    left_root, left_paths = root_and_paths(leaf_hashes[:split])
    right_root, right_paths = root_and_paths(leaf_hashes[split:])
    for path in left_paths:
        path.append(right_root)
    for path in right_paths:
        path.append(left_root)
    return node_hash(left_root, right_root), left_paths + right_paths


def hasher_over(leaf_hashes: Sequence[bytes]) -> RangeHasher:
    """A RangeHasher over leaf hashes held in memory (offline verification, tests)."""

    def range_hash(start: int, end: int) -> bytes:
        return root_of_leaf_hashes(leaf_hashes[start:end])

    return range_hash


def roots_at(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The roots at each of ``sizes``, in one pass over the leaves."""
    wanted = sorted(set(sizes))
    roots: dict[int, bytes] = {}
    builder = TreeBuilder()
    position = 0
    if wanted and wanted[0] == 0:
        roots[0] = EMPTY_ROOT
        position = 1
    for value in leaf_hashes:
        if position >= len(wanted):
            break
        builder.add(value)
        if builder.size == wanted[position]:
            roots[builder.size] = builder.root()
            position += 1
    return roots
