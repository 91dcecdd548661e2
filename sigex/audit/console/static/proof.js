// A record's page: check its inclusion proof and signed checkpoint here, and that what the page
// shows is what the proven entry says.
import { ProofFailure, checkProof, pinnedKey } from "./tlog.js";

function display(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(value)) {
    return value.slice(0, 19).replace("T", " ");
  }
  return String(value);
}

function show(verdict, headline, detail) {
  const status = document.getElementById("proof-status");
  status.className = `verdict ${verdict}`;
  status.dataset.verdict = verdict;
  status.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = headline;
  status.append(strong, document.createTextNode(` ${detail}`));
}

function shownFieldsDiffer(entry) {
  const differ = [];
  for (const cell of document.querySelectorAll("[data-field]")) {
    const name = cell.dataset.field;
    if (display(entry[name]) !== cell.textContent.trim()) differ.push(name);
  }
  return differ;
}

async function main() {
  const block = document.getElementById("proof");
  if (!block) {
    show("unchecked", "Proof not checked:", "no signed checkpoint covers this record yet.");
    return;
  }
  if (!window.crypto || !window.crypto.subtle) {
    show("unchecked", "Proof not checked:", "this browser offers no WebCrypto on this page.");
    return;
  }
  let key;
  try {
    key = pinnedKey();
  } catch {
    key = null;
  }
  if (!key) {
    show("unchecked", "Proof not checked:", "pin the audit key first (Audit key, in the menu).");
    return;
  }
  try {
    const proof = JSON.parse(block.textContent);
    const proven = await checkProof(proof, key);
    const differ = shownFieldsDiffer(JSON.parse(proof.entry));
    if (differ.length) {
      throw new ProofFailure(`the page shows other values than the proven record for: ${differ.join(", ")}`);
    }
    show(
      "verified",
      "Proof verified in your browser.",
      `Record ${proof.leaf_index} is in the log of ${proven.treeSize} records whose root the pinned audit key (${proven.keyId}) signed at ${proven.issuedAt}.`,
    );
  } catch (error) {
    const reason = error instanceof ProofFailure ? error.message : `the proof could not be checked (${error.name})`;
    show("failed", "Proof FAILED:", reason);
  }
}

main();
