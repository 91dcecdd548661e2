"""sigex.merkle against RFC 9162's definition and RFC 6962's published test vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigex.merkle import (
    EMPTY_ROOT,
    MerkleError,
    consistency_proof,
    hasher_over,
    inclusion_proof,
    leaf_hash,
    node_hash,
    right_edge,
    root_and_paths,
    root_from_inclusion,
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


# RFC 6962's test data as Certificate Transparency and transparency-dev/merkle publish it:
# eight leaf entries, the root of every prefix, and a few inclusion and consistency proofs.
# Another implementation that agrees on these agrees on every tree sigex signs.
RFC6962_ENTRIES = [
    bytes.fromhex(value)
    for value in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, path)
RFC6962_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
RFC6962_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def test_the_published_rfc6962_roots() -> None:
    hashes = [leaf_hash(entry) for entry in RFC6962_ENTRIES]
    for size, expected in enumerate(RFC6962_ROOTS):
        assert root_of_leaf_hashes(hashes[:size]).hex() == expected, size
    assert roots_at(hashes, range(9)) == {
        size: bytes.fromhex(root) for size, root in enumerate(RFC6962_ROOTS)
    }


def test_the_published_rfc6962_inclusion_proofs() -> None:
    hashes = [leaf_hash(entry) for entry in RFC6962_ENTRIES]
    for index, size, expected in RFC6962_INCLUSION:
        path = inclusion_proof(index, size, hasher_over(hashes))
        assert [step.hex() for step in path] == expected, (index, size)
        root = bytes.fromhex(RFC6962_ROOTS[size])
        assert verify_inclusion(hashes[index], index, size, path, root)
        assert not verify_inclusion(
            hashes[index], index, size, path, bytes.fromhex(RFC6962_ROOTS[0])
        )
        # the envelope's all-paths-at-once builder gives the same paths
        batch_root, paths = root_and_paths(hashes[:size])
        assert batch_root == root and paths[index] == path


def test_the_published_rfc6962_consistency_proofs() -> None:
    hashes = [leaf_hash(entry) for entry in RFC6962_ENTRIES]
    for old, new, expected in RFC6962_CONSISTENCY:
        proof = consistency_proof(old, new, hasher_over(hashes))
        assert [step.hex() for step in proof] == expected, (old, new)
        old_root, new_root = bytes.fromhex(RFC6962_ROOTS[old]), bytes.fromhex(RFC6962_ROOTS[new])
        assert verify_consistency(old, new, old_root, new_root, proof)


def test_root_and_paths_agree_with_single_proofs_for_every_size_up_to_40() -> None:
    for size in range(1, 41):
        hashes = [leaf_hash(entry) for entry in entries(size)]
        root, paths = root_and_paths(hashes)
        assert root == reference_root(entries(size))
        for index, path in enumerate(paths):
            assert path == inclusion_proof(index, size, hasher_over(hashes))
            assert root_from_inclusion(hashes[index], index, size, path) == root
        assert root_from_inclusion(hashes[0], 0, size, [*paths[0], root]) is None  # too long
        if size > 1:
            assert root_from_inclusion(hashes[0], 0, size, paths[0][:-1]) is None  # too short
    with pytest.raises(MerkleError):
        root_and_paths([])
