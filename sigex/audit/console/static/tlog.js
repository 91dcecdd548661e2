// The checks a record's page makes in the browser, with WebCrypto only (no library, no server).
//
// An access record is leaf `leaf_index` of an RFC 9162 Merkle tree: its leaf hash is
// SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left || right). The inclusion
// path leads from the leaf to the root of a checkpoint, whose Ed25519 signature by the audit
// key covers the text "sigex.audit.checkpoint/v1\n<size>\n<root, base64>\n<issued at>\n".
// Nothing the server says is taken on trust: the hashes are recomputed here, and the key is
// the one the auditor pinned in this browser.

export const ORIGIN = "sigex.audit.checkpoint/v1";
export const PINNED_KEY = "sigex.audit.pinned-key";
const SPKI_ED25519 = "302a300506032b6570032100";
const encoder = new TextEncoder();

export class ProofFailure extends Error {}

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^(?:[0-9a-f]{2})*$/.test(hex)) {
    throw new ProofFailure("a value that should be hexadecimal is not");
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function leafHash(entryText) {
  return sha256(concat(Uint8Array.of(0), encoder.encode(entryText)));
}

function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function odd(n) {
  return n % 2 === 1;
}

function half(n) {
  return Math.floor(n / 2);
}

// RFC 9162, section 2.1.3.2: the root that `path` leads to from leaf `index` of `size` leaves.
export async function rootFromInclusion(index, size, leaf, path) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new ProofFailure("the record is not inside the checkpoint's tree");
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) throw new ProofFailure("the proof has more hashes than the tree allows");
    if (odd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofFailure("the proof has fewer hashes than the tree needs");
  return r;
}

function base64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

export function signedText(checkpoint) {
  const root = hexToBytes(checkpoint.root);
  return `${ORIGIN}\n${checkpoint.tree_size}\n${base64(root)}\n${checkpoint.issued_at}\n`;
}

// The raw 32-byte Ed25519 key from PEM (SubjectPublicKeyInfo) or 64 hexadecimal characters.
export function parsePublicKey(text) {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return hexToBytes(trimmed.toLowerCase());
  const match = trimmed.match(/-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/);
  if (!match) throw new ProofFailure("not a PEM public key or 64 hexadecimal characters");
  let der;
  try {
    der = Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    throw new ProofFailure("the PEM block is not base64");
  }
  const hex = bytesToHex(der);
  if (der.length !== 44 || !hex.startsWith(SPKI_ED25519)) {
    throw new ProofFailure("not an Ed25519 public key");
  }
  return der.slice(12);
}

// The key id the audit service uses: the first 16 bytes of SHA-256 over the raw key, in hex.
export async function keyId(rawKey) {
  return bytesToHex(await sha256(rawKey)).slice(0, 32);
}

export async function verifySignature(rawKey, checkpoint) {
  const key = await crypto.subtle.importKey("raw", rawKey, { name: "Ed25519" }, false, ["verify"]);
  const signature = hexToBytes(checkpoint.signature);
  if (signature.length !== 64) throw new ProofFailure("the checkpoint's signature is not 64 bytes");
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, encoder.encode(signedText(checkpoint)));
}

// Every check of one record's proof; resolves with what was proven, or throws ProofFailure.
export async function checkProof(proof, rawKey) {
  const checkpoint = proof.checkpoint;
  if (!checkpoint || checkpoint.origin !== ORIGIN) {
    throw new ProofFailure("the checkpoint is not one of this access log's");
  }
  const pinnedId = await keyId(rawKey);
  if (checkpoint.key_id !== pinnedId) {
    throw new ProofFailure(`the checkpoint names key ${checkpoint.key_id}, not the pinned key ${pinnedId}`);
  }
  if (!(await verifySignature(rawKey, checkpoint))) {
    throw new ProofFailure("the checkpoint's signature does not verify with the pinned audit key");
  }
  const path = proof.path.map(hexToBytes);
  const leaf = await leafHash(proof.entry);
  const root = await rootFromInclusion(proof.leaf_index, checkpoint.tree_size, leaf, path);
  if (bytesToHex(root) !== checkpoint.root) {
    throw new ProofFailure("the record and its path do not lead to the signed root: the record or the log was changed");
  }
  return { treeSize: checkpoint.tree_size, issuedAt: checkpoint.issued_at, keyId: pinnedId };
}

export function pinnedKey() {
  const hex = window.localStorage.getItem(PINNED_KEY);
  return hex ? hexToBytes(hex) : null;
}
