"""RFC 9162 hashing, proofs and verification against a direct transcription of the RFC."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from sigex.accesslog.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    hasher_over,
    inclusion_proof,
    leaf_hash,
    node_hash,
    right_edge,
    root_of_leaf_hashes,
    roots_at,
    verify_consistency,
    verify_inclusion,
)


def reference_root(entries: list[bytes]) -> bytes:
    """MTH as RFC 9162 section 2.1.1 defines it, recursively."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    left, right = reference_root(entries[:k]), reference_root(entries[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def entries(count: int) -> list[bytes]:
    return [f"entry-{i}".encode() for i in range(count)]


def test_known_small_trees() -> None:
    assert root_of_leaf_hashes([]) == EMPTY_ROOT
    one = entries(1)
    assert root_of_leaf_hashes([leaf_hash(one[0])]) == leaf_hash(one[0])
    three = entries(3)
    hashed = [leaf_hash(e) for e in three]
    assert root_of_leaf_hashes(hashed) == node_hash(node_hash(hashed[0], hashed[1]), hashed[2])


def test_roots_and_right_edges_match_the_rfc_for_every_size_up_to_130() -> None:
    data = entries(130)
    hashed = [leaf_hash(e) for e in data]
    roots = roots_at(hashed, range(131))
    for size in range(131):
        assert roots[size] == reference_root(data[:size])
        assert sum(1 << level for level, _ in right_edge(size)) == size


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies_and_binds_its_index(
    size_and_index: tuple[int, int],
) -> None:
    size, index = size_and_index
    data = entries(size)
    hashed = [leaf_hash(e) for e in data]
    root = reference_root(data)
    path = inclusion_proof(index, size, hasher_over(hashed))
    assert verify_inclusion(hashed[index], index, size, path, root)
    if size > 1:
        other = (index + 1) % size
        assert not verify_inclusion(hashed[index], other, size, path, root)
        assert not verify_inclusion(hashed[other], index, size, path, root)
    assert not verify_inclusion(hashed[index], size, size, path, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_every_consistency_proof_verifies_and_refuses_a_rewrite(sizes: tuple[int, int]) -> None:
    old, new = sizes
    data = entries(new)
    hashed = [leaf_hash(e) for e in data]
    proof = consistency_proof(old, new, hasher_over(hashed))
    assert verify_consistency(old, new, reference_root(data[:old]), reference_root(data), proof)
    if 0 < old < new:
        rewritten = [*data[: old - 1], b"rewritten", *data[old:]]
        assert not verify_consistency(
            old, new, reference_root(rewritten[:old]), reference_root(data), proof
        )
        assert not verify_consistency(
            old, new, reference_root(data[:old]), reference_root(rewritten), proof
        )
