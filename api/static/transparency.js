// The wallet's own check that an entry is in the ledger the community published (RFC 9162).
//
// window.JindouTransparency.checkEntry(accountId, entryId, token) → Promise of
//   {verified: boolean, period: "YYYY-MM" | null, reason: string}
// It takes the signed tree head printed on the community's latest fund report, checks its Ed25519
// signature with the deployment's published key, fetches the entry's inclusion proof in that tree
// (or, for an entry newer than the report, in today's signed tree plus the consistency proof that
// today's tree extends the published one), recomputes the leaf from the event's own bytes and
// walks the proof to the signed root. Everything is checked here, in the browser, with WebCrypto:
// the server is not trusted to say "verified". No other script is needed.
"use strict";

(() => {
  const TREE_HEAD_TAG = "jindou-tree-head-v1";
  const REQUEST_TIMEOUT_MS = 15000;
  const PERIODS_TRIED_MAX = 2; // without a report index: this month, then last month

  class CheckFailed extends Error {}

  async function getJson(path, token) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, {
      headers, cache: "no-store", credentials: "omit", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  }

  async function mustGet(path, token, what) {
    const { status, body } = await getJson(path, token);
    if (status !== 200 || !body) throw new CheckFailed(`${what}: HTTP ${status}`);
    return body;
  }

  const hexToBytes = (hex) => {
    if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) throw new CheckFailed("a hash is not hex");
    return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
  };
  const bytesToHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const base64ToBytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const equalBytes = (a, b) => a.length === b.length && a.every((value, index) => value === b[index]);

  async function sha256(...parts) {
    const joined = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  }
  const leafHash = (data) => sha256(Uint8Array.of(0), data);
  const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

  // RFC 9162 §2.1.3.2. Sizes fit in a double's exact integers (2^53) for any ledger we will see.
  async function verifyInclusion(leafIndex, treeSize, leaf, path, root) {
    if (!(leafIndex >= 0 && leafIndex < treeSize)) return false;
    let index = leafIndex, last = treeSize - 1, hashed = leaf;
    for (const sibling of path) {
      if (last === 0) return false;
      if (index % 2 === 1 || index === last) {
        hashed = await nodeHash(sibling, hashed);
        while (index % 2 === 0 && index !== 0) {
          index = Math.floor(index / 2);
          last = Math.floor(last / 2);
        }
      } else {
        hashed = await nodeHash(hashed, sibling);
      }
      index = Math.floor(index / 2);
      last = Math.floor(last / 2);
    }
    return last === 0 && equalBytes(hashed, root);
  }

  // RFC 9162 §2.1.4.2 (equal sizes: an empty proof and equal roots).
  async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
    if (!(first > 0 && first <= second)) return false;
    if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
    if (proof.length === 0) return false;
    const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
    let index = first - 1, last = second - 1;
    while (index % 2 === 1) {
      index = Math.floor(index / 2);
      last = Math.floor(last / 2);
    }
    let firstHash = path[0], secondHash = path[0];
    for (const node of path.slice(1)) {
      if (last === 0) return false;
      if (index % 2 === 1 || index === last) {
        firstHash = await nodeHash(node, firstHash);
        secondHash = await nodeHash(node, secondHash);
        while (index % 2 === 0 && index !== 0) {
          index = Math.floor(index / 2);
          last = Math.floor(last / 2);
        }
      } else {
        secondHash = await nodeHash(secondHash, node);
      }
      index = Math.floor(index / 2);
      last = Math.floor(last / 2);
    }
    return equalBytes(firstHash, firstRoot) && equalBytes(secondHash, secondRoot) && last === 0;
  }

  // The deployment's keys (current and retired) as WebCrypto keys, by key id.
  async function publishedKeys() {
    const answer = await mustGet("/v1/public/transparency/key", null, "the signing key");
    const keys = new Map();
    for (const entry of [answer, ...(answer.retired || [])]) {
      const raw = base64ToBytes(entry.public_key);
      if (entry.algorithm !== "ed25519" || bytesToHex(await sha256(raw)) !== entry.key_id) continue;
      try {
        keys.set(entry.key_id, await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]));
      } catch (failure) {
        throw new CheckFailed("this browser cannot check Ed25519 signatures");
      }
    }
    return keys;
  }

  async function checkHead(head, keys) {
    const key = keys.get(head?.key_id);
    if (!key) throw new CheckFailed("the tree head is signed by a key the log does not publish");
    const message = new TextEncoder().encode(`${TREE_HEAD_TAG}\n${head.tree_size}\n${head.root_hash}\n${head.timestamp}`);
    const valid = await crypto.subtle.verify({ name: "Ed25519" }, key, base64ToBytes(head.signature), message);
    if (!valid) throw new CheckFailed("the tree head's signature does not verify");
  }

  const monthBefore = (period) => {
    const [year, month] = period.split("-").map(Number);
    return month === 1 ? `${year - 1}-12` : `${year}-${String(month - 1).padStart(2, "0")}`;
  };

  // The community's latest fund report: from the public index when the server has one, else this
  // month's report, else last month's.
  async function latestReport(communityId) {
    const base = `/v1/public/communities/${encodeURIComponent(communityId)}/fund-reports`;
    const index = await getJson(base, null);
    let periods = [];
    if (index.status === 200 && Array.isArray(index.body?.items)) {
      periods = index.body.items.map((item) => item.period).filter(Boolean).sort().reverse();
    } else {
      const now = new Date();
      periods = [`${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`];
      while (periods.length < PERIODS_TRIED_MAX) periods.push(monthBefore(periods[periods.length - 1]));
    }
    for (const period of periods) {
      const { status, body } = await getJson(`${base}/${period}`, null);
      if (status === 200 && body?.tree_head) return body;
    }
    throw new CheckFailed("no published fund report with a signed tree head");
  }

  async function checkEntry(accountId, entryId, token) {
    let period = null;
    try {
      if (!globalThis.crypto?.subtle) throw new CheckFailed("this page cannot use WebCrypto (it needs HTTPS or localhost)");
      const account = await mustGet(`/v1/accounts/${encodeURIComponent(accountId)}`, token, "the account");
      const report = await latestReport(account.community_id);
      period = report.period;
      const keys = await publishedKeys();
      const published = report.tree_head;
      await checkHead(published, keys);
      const proofPath = `/v1/accounts/${encodeURIComponent(accountId)}/entries/${encodeURIComponent(entryId)}/proof`;
      let head = published;
      let answer = await getJson(`${proofPath}?tree_size=${published.tree_size}`, token);
      if (answer.status === 422) {
        // Newer than the report: prove it in today's tree, and that today's tree extends the report's.
        head = await mustGet("/v1/public/transparency/tree-head", null, "today's tree head");
        await checkHead(head, keys);
        if (published.tree_size > 0) {
          const consistency = await mustGet(
            `/v1/public/transparency/consistency?first=${published.tree_size}&second=${head.tree_size}`, null,
            "the consistency proof");
          const consistent = await verifyConsistency(published.tree_size, head.tree_size, hexToBytes(published.root_hash),
            hexToBytes(head.root_hash), consistency.proof.map(hexToBytes));
          if (!consistent) throw new CheckFailed("today's ledger does not extend the published one: history was rewritten");
        }
        answer = await getJson(`${proofPath}?tree_size=${head.tree_size}`, token);
      }
      if (answer.status !== 200 || !answer.body) throw new CheckFailed(`the inclusion proof: HTTP ${answer.status}`);
      const proof = answer.body;
      const leaf = await leafHash(base64ToBytes(proof.canonical_base64));
      if (bytesToHex(leaf) !== proof.leaf_hash) throw new CheckFailed("the event's bytes do not match its leaf");
      const included = await verifyInclusion(proof.leaf_index, head.tree_size, leaf, proof.audit_path.map(hexToBytes),
        hexToBytes(head.root_hash));
      if (!included) throw new CheckFailed("the entry is not in the signed ledger");
      const reason = head === published ? "in the published tree" : "in today's tree, which extends the published one";
      return { verified: true, period, reason };
    } catch (failure) {
      const reason = failure instanceof CheckFailed ? failure.message : `the check could not finish: ${failure}`;
      return { verified: false, period, reason };
    }
  }

  window.JindouTransparency = { checkEntry };
})();
