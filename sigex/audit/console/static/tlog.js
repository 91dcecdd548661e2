// The checks a record's page makes in the browser, with WebCrypto only (no library, no server).
//
// An access record is leaf `leaf_index` of an RFC 9162 Merkle tree: its leaf hash is
// SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left || right). The inclusion
// path leads from the leaf to the root of a checkpoint. A checkpoint is a C2SP signed note
// ("<origin>\n<size>\n<root, base64>\n", a blank line, then "— <origin> <base64(key ID ||
// signature)>" lines); the audit key's Ed25519 signature covers the note text, and its key
// ID is SHA-256(origin || 0x0A || 0x01 || key)[:4]. Checkpoints signed before that format
// covered "sigex.audit.checkpoint/v1\n<size>\n<root, base64>\n<issued at>\n" and are still
// checked. Nothing the server says is taken on trust: the note is parsed and the hashes are
// recomputed here, and the key is the one the auditor pinned in this browser.

export const LEGACY_ORIGIN = "sigex.audit.checkpoint/v1";
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

function fromBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new ProofFailure("a value that should be base64 is not");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function signedText(checkpoint) {
  const root = hexToBytes(checkpoint.root);
  return `${LEGACY_ORIGIN}\n${checkpoint.tree_size}\n${base64(root)}\n${checkpoint.issued_at}\n`;
}

// A C2SP signed note: its text (with the final newline) and its signature lines.
export function parseNote(note) {
  if (typeof note !== "string" || !note.endsWith("\n") || /[\u0000-\u0009\u000b-\u001f]/.test(note)) {
    throw new ProofFailure("the checkpoint is not a signed note");
  }
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new ProofFailure("the checkpoint note has no signatures");
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      const match = line.match(/^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/);
      if (!match) throw new ProofFailure("a signature line of the checkpoint note is malformed");
      const raw = fromBase64(match[2]);
      if (raw.length < 5) throw new ProofFailure("a signature line of the checkpoint note is too short");
      return { name: match[1], keyId: raw.slice(0, 4), signature: raw.slice(4) };
    });
  return { text, signatures };
}

// The signed-note key ID of the log's Ed25519 key under the name `origin`.
export async function noteKeyId(origin, rawKey) {
  const material = concat(encoder.encode(`${origin}\n`), Uint8Array.of(1), rawKey);
  return bytesToHex((await sha256(material)).slice(0, 4));
}

// The note's own lines must say what the checkpoint's fields say; its log signature must verify.
async function checkNote(checkpoint, rawKey) {
  const note = parseNote(checkpoint.note);
  const expected = `${checkpoint.origin}\n${checkpoint.tree_size}\n${base64(hexToBytes(checkpoint.root))}\n`;
  if (note.text !== expected) throw new ProofFailure("the checkpoint note says another size or root");
  const id = await noteKeyId(checkpoint.origin, rawKey);
  const line = note.signatures.find((s) => s.name === checkpoint.origin && bytesToHex(s.keyId) === id);
  if (!line) throw new ProofFailure(`the checkpoint note carries no signature by the pinned audit key (${id})`);
  if (line.signature.length !== 64) throw new ProofFailure("the checkpoint's signature is not 64 bytes");
  const key = await crypto.subtle.importKey("raw", rawKey, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, line.signature, encoder.encode(note.text)))) {
    throw new ProofFailure("the checkpoint's signature does not verify with the pinned audit key");
  }
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
  if (!checkpoint || typeof checkpoint.origin !== "string") {
    throw new ProofFailure("the checkpoint is not one of this access log's");
  }
  const pinnedId = await keyId(rawKey);
  if (checkpoint.origin === LEGACY_ORIGIN) {
    if (checkpoint.key_id !== pinnedId) {
      throw new ProofFailure(`the checkpoint names key ${checkpoint.key_id}, not the pinned key ${pinnedId}`);
    }
    if (!(await verifySignature(rawKey, checkpoint))) {
      throw new ProofFailure("the checkpoint's signature does not verify with the pinned audit key");
    }
  } else {
    await checkNote(checkpoint, rawKey);
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
