// What both pages share: the signed-in session, calls to the public API, and formatting.
"use strict";

const TOKEN_LENGTH_MAX = 512;
const ACCOUNT_ID_LENGTH_MAX = 100;
const REQUEST_TIMEOUT_MS = 15000;

class ApiError extends Error {
  constructor(code, status, message) {
    super(message || code);
    this.code = code; // the contract's error code, or "network" when no answer arrived
    this.status = status;
  }
}

// The token is typed once and kept on this phone only (never in a URL); "sign out" forgets it.
class Session {
  constructor(storageKey) {
    this.storageKey = storageKey;
    const saved = JSON.parse(localStorage.getItem(storageKey) || "null");
    this.accountId = saved?.account_id ?? null;
    this.token = saved?.token ?? null;
  }

  get signedIn() {
    return Boolean(this.accountId && this.token);
  }

  save(accountId, token) {
    this.accountId = accountId;
    this.token = token;
    localStorage.setItem(this.storageKey, JSON.stringify({ account_id: accountId, token }));
  }

  clear() {
    this.accountId = null;
    this.token = null;
    localStorage.removeItem(this.storageKey);
  }

  // One call to the API. Resolves to {data, response}; rejects with ApiError (code "network" when
  // the request may or may not have reached the server, so the caller can retry idempotently).
  async call(method, path, { body, idempotencyKey, accept = "application/json" } = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (failure) {
      throw new ApiError("network", 0, String(failure));
    }
    if (!response.ok) throw await errorFrom(response);
    const data = accept === "application/json" ? await response.json() : await response.text();
    return { data, response };
  }
}

async function errorFrom(response) {
  try {
    const { error } = await response.json();
    return new ApiError(error.code, response.status, error.message);
  } catch {
    // A proxy or server that did not answer in the contract's shape: treat 5xx as retryable.
    return new ApiError(response.status >= 500 ? "unavailable" : "unknown", response.status, response.statusText);
  }
}

function errorMessage(error) {
  if (!(error instanceof ApiError)) return t("error.unknown", { code: String(error) });
  const key = `error.${error.code}`;
  return hasMessage(key) ? t(key) : t("error.unknown", { code: error.code });
}

// Idempotency keys must be unguessable; crypto.randomUUID exists only on https/localhost, and a
// shop's phone may reach the server over plain http on the local network.
function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Times arrive in the community's own offset ("2025-03-01T14:03:22+08:00"); show them as they are,
// whatever time zone the phone is set to.
const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function localParts(occurredAt) {
  const match = RFC3339.exec(occurredAt);
  if (!match) return null;
  const [, date, minutes, seconds, offset] = match;
  return { date, minutes, seconds, offsetMinutes: offsetToMinutes(offset) };
}

function offsetToMinutes(offset) {
  if (offset === "Z") return 0;
  const sign = offset[0] === "-" ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
}

function clockTime(occurredAt, withSeconds = false) {
  const parts = localParts(occurredAt);
  if (!parts) return occurredAt;
  return withSeconds ? `${parts.minutes}:${parts.seconds}` : parts.minutes;
}

// Today's date (YYYY-MM-DD) at a given UTC offset.
function dateAtOffset(nowMs, offsetMinutes) {
  return new Date(nowMs + offsetMinutes * 60000).toISOString().slice(0, 10);
}

function isToday(occurredAt, nowMs = Date.now()) {
  const parts = localParts(occurredAt);
  return parts !== null && parts.date === dateAtOffset(nowMs, parts.offsetMinutes);
}

// The months (YYYY-MM) that are "now" somewhere on Earth (UTC−12 … UTC+14): today's sales, in the
// community's time zone, lie in one of them whatever the phone's own clock setting.
function currentPeriods(nowMs = Date.now()) {
  const earliest = dateAtOffset(nowMs, -12 * 60).slice(0, 7);
  const latest = dateAtOffset(nowMs, 14 * 60).slice(0, 7);
  return earliest === latest ? [earliest] : [earliest, latest];
}

function maskId(id) {
  return id ? `${String(id).slice(0, 4)}****` : "—";
}

function formatNumber(value) {
  return Number(value).toLocaleString(currentLanguage() === "zh" ? "zh-CN" : "en-US");
}

// Page furniture shared by both pages: language switch, help, sign-in and sign-out.
function setUpShell({ session, onSignedIn, onSignedOut, checkAccount }) {
  translatePage();
  document.getElementById("language").addEventListener("click", toggleLanguage);
  const form = document.getElementById("signin-form");
  const signOut = document.getElementById("signout");
  const error = document.getElementById("signin-error");

  function show(signedIn) {
    document.getElementById("signin").hidden = signedIn;
    document.getElementById("app").hidden = !signedIn;
    signOut.hidden = !signedIn;
  }

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const accountId = form.elements.account.value.trim().slice(0, ACCOUNT_ID_LENGTH_MAX);
    const token = form.elements.token.value.trim().slice(0, TOKEN_LENGTH_MAX);
    error.textContent = "";
    if (!accountId || !token) {
      error.textContent = t("signin.missing");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    session.save(accountId, token);
    try {
      const { data } = await session.call("GET", `/v1/accounts/${encodeURIComponent(accountId)}`);
      const problem = checkAccount(data);
      if (problem) throw new Error(problem);
      form.reset();
      show(true);
      onSignedIn(data);
    } catch (failure) {
      session.clear();
      error.textContent = failure instanceof ApiError ? errorMessage(failure) : failure.message;
    } finally {
      button.disabled = false;
    }
  });

  function signOutNow(message = "") {
    session.clear();
    onSignedOut();
    show(false);
    error.textContent = message;
  }

  // Shows a failed call's message; a token that stopped working signs the phone out.
  function failed(failure, showMessage) {
    if (failure.code === "unauthorized") signOutNow(errorMessage(failure));
    else showMessage(errorMessage(failure));
  }

  signOut.addEventListener("click", () => signOutNow());

  show(session.signedIn);
  if (session.signedIn) onSignedIn(null);
  return { failed };
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
