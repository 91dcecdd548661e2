// Pin the audit service's public key in this browser (localStorage), after showing its key id.
import { PINNED_KEY, ProofFailure, bytesToHex, keyId, parsePublicKey, pinnedKey } from "./tlog.js";

async function showPinned() {
  const line = document.getElementById("pinned-key");
  let key = null;
  try {
    key = pinnedKey();
  } catch {
    key = null;
  }
  if (key) {
    const id = await keyId(key);
    line.textContent = `Pinned in this browser: audit key id ${id}.`;
    line.className = "ok";
    line.dataset.keyId = id;
  } else {
    line.textContent = "No key pinned in this browser.";
    line.className = "muted";
    line.dataset.keyId = "";
  }
}

document.getElementById("pin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = document.getElementById("pin-result");
  try {
    const raw = parsePublicKey(document.getElementById("key-text").value);
    window.localStorage.setItem(PINNED_KEY, bytesToHex(raw));
    result.textContent = `Pinned. Compare this key id with the one you were given: ${await keyId(raw)}`;
    result.className = "ok";
  } catch (error) {
    result.textContent = error instanceof ProofFailure ? error.message : "That is not a key.";
    result.className = "failed";
  }
  await showPinned();
});

document.getElementById("unpin-key").addEventListener("click", async () => {
  window.localStorage.removeItem(PINNED_KEY);
  document.getElementById("pin-result").textContent = "The pinned key is forgotten.";
  await showPinned();
});

showPinned();
