// Re-checks a usage record's inclusion proof in the browser, so an auditor need not take the
// space's word for it: leaf hash = SHA-256(0x00 || record bytes), the audit path folded as in
// RFC 9162 §2.1.3.2 to the root of the signed tree head, and the head's Ed25519 signature over
// its canonical bytes checked against the space key (Web Crypto; RFC 8032).
"use strict";

(function () {
  const out = document.getElementById("proof-result");
  const source = document.getElementById("proof-data");
  if (!out || !source) return;

  const say = (key, cls) => { out.textContent = out.dataset[key]; out.className = cls; };
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const b64url = (text) => bytes(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => {
    if (!/^[0-9a-f]{64}$/.test(text)) throw new Error("not a 32-byte hex hash");
    return Uint8Array.from(text.match(/../g), (h) => parseInt(h, 16));
  };
  const concat = (...parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return all;
  };
  const sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // RFC 9162 §2.1.3.2: verifying an inclusion proof
  async function root(index, size, leaf, path) {
    if (index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) return null;
      if ((fn & 1) === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  async function signed(headBytes, signature, key) {
    try {
      const publicKey = await crypto.subtle.importKey("raw", b64url(key), { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, publicKey, b64url(signature), headBytes);
    } catch (e) {
      return undefined; // this browser has no Ed25519 in Web Crypto
    }
  }

  async function check() {
    say("checking", "pending");
    let data, record, head, headBytes, path;
    try {
      data = JSON.parse(source.textContent);
      const leafBytes = bytes(data.leaf);
      record = JSON.parse(new TextDecoder().decode(leafBytes));
      headBytes = bytes(data.head);
      head = JSON.parse(new TextDecoder().decode(headBytes));
      path = data.proof.map(unhex);
      data.leafBytes = leafBytes;
    } catch (e) {
      return say("badData", "bad");
    }
    const leaf = await leafHash(data.leafBytes);
    if (hex(leaf) !== data.leaf_hash || record.document.id !== data.record_id) return say("badLeaf", "bad");
    const computed = await root(data.index, head.tree_size, leaf, path);
    if (computed === null || hex(computed) !== head.root_hash) return say("badProof", "bad");
    const ok = await signed(headBytes, data.head_signature, data.space_key);
    if (ok === false) return say("badSignature", "bad");
    say(ok ? "ok" : "okUnsigned", "ok");
  }

  check().catch(() => say("badData", "bad"));
})();
