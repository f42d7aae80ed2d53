// The one client of the public API that every page shares: the signed-in session, calls (every
// POST carries an Idempotency-Key), sign-in by token or by sign-in code (typed, or from the address's
// #sign-in=CODE), errors shown in Chinese next to the field that caused them, and formatting.
"use strict";

const TOKEN_LENGTH_MAX = 512;
const ACCOUNT_ID_LENGTH_MAX = 100;
const SIGN_IN_CODE_DIGITS_MIN = 8;
const SIGN_IN_CODE_DIGITS_MAX = 12;
const SIGN_IN_FRAGMENT = /^#sign-in=(\d+)$/;
const REQUEST_TIMEOUT_MS = 15000;

class ApiError extends Error {
  constructor(code, status, message, details = {}) {
    super(message || code);
    this.code = code; // the contract's error code, or "network" when no answer arrived
    this.status = status;
    this.details = details && typeof details === "object" ? details : {};
  }

  // The request field the server blamed ("amount", "handler_awards.ID"), if it named one.
  get field() {
    return this.details.field || this.details.errors?.[0]?.field || null;
  }
}

// The credentials are typed (or arrive by sign-in code) once and kept on this device only (never in
// a URL); "sign out" forgets them. A holder's session has accountId; a staff member's has staffId,
// role and communityId (null for a deployment-wide admin).
class Session {
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.load(JSON.parse(localStorage.getItem(storageKey) || "null") ?? {});
  }

  load(saved) {
    this.token = saved.token ?? null;
    this.accountId = saved.account_id ?? null;
    this.staffId = saved.staff_id ?? null;
    this.role = saved.role ?? null;
    this.communityId = saved.community_id ?? null;
    this.kind = saved.kind ?? null;
  }

  get signedIn() {
    return Boolean(this.token && (this.accountId || this.staffId));
  }

  // Fields as the API names them: {token, account_id} or {token, staff_id, role, community_id, kind}.
  save(fields) {
    const saved = { ...this.saved(), ...fields };
    this.load(saved);
    localStorage.setItem(this.storageKey, JSON.stringify(saved));
  }

  saved() {
    return {
      token: this.token, account_id: this.accountId, staff_id: this.staffId,
      role: this.role, community_id: this.communityId, kind: this.kind,
    };
  }

  clear() {
    this.load({});
    localStorage.removeItem(this.storageKey);
  }

  // One call, answering {data, response}; rejects with ApiError (code "network" when the request may
  // or may not have reached the server: retrying with the same idempotencyKey is then safe). Every
  // POST carries an Idempotency-Key: the caller's (to retry one action) or a fresh one.
  async request(method, path, { body, idempotencyKey, accept = "application/json", signedIn = true } = {}) {
    const headers = { Accept: accept };
    if (signedIn) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method === "POST") headers["Idempotency-Key"] = idempotencyKey || newIdempotencyKey();
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
    let data;
    if (accept === "application/json") data = await response.json();
    else if (accept.startsWith("text/") || accept === "image/svg+xml") data = await response.text();
    else data = await response.blob(); // a PNG, a PDF
    return { data, response };
  }

  // The short form the page modules use: the parsed answer, or a thrown ApiError.
  async call(method, path, body, options = {}) {
    const { data } = await this.request(method, path, { ...options, body });
    return data;
  }
}

// A page's own check of what was typed, shown like the server's refusals: beside the field.
class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

async function errorFrom(response) {
  try {
    const { error } = await response.json();
    return new ApiError(error.code, response.status, error.message, error.details);
  } catch {
    // A proxy or server that did not answer in the contract's shape: treat 5xx as retryable.
    return new ApiError(response.status >= 500 ? "unavailable" : "unknown", response.status, response.statusText);
  }
}

// The message of an error code; a refused input may have its own ("error.validation_error.award").
function errorMessage(error) {
  if (!(error instanceof ApiError)) return t("error.unknown", { code: String(error?.message ?? error) });
  const fieldKey = `error.${error.code}.${String(error.field ?? "").replace(/^body\./, "").split(".")[0]}`;
  if (error.field && hasMessage(fieldKey)) return t(fieldKey);
  const key = `error.${error.code}`;
  return hasMessage(key) ? t(key) : t("error.unknown", { code: error.code });
}

// --- Errors next to the field that caused them ---------------------------------------------------

function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// The input a server's field name points at: name="amount" or data-field="amount" (also for
// "body.amount" and "handler_awards.ID": the longest prefix that names an input wins).
function inputForField(form, field) {
  const parts = String(field).replace(/^body\./, "").split(".");
  for (let length = parts.length; length > 0; length -= 1) {
    const name = CSS.escape(parts.slice(0, length).join("."));
    const input = form.querySelector(`[data-field="${name}"], [name="${name}"]`);
    if (input) return input;
  }
  return null;
}

// Shows a failure in Chinese (or English) beside the input it concerns, or in `fallback` (an element
// or a function taking the message) when no input is to blame.
function showError(error, { form = null, fallback = null } = {}) {
  const message = error instanceof InputError ? error.message : errorMessage(error);
  if (form) clearErrors(form);
  const input = form && error.field ? inputForField(form, error.field) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    const note = element("p", "field-error error", message);
    note.setAttribute("role", "alert");
    input.insertAdjacentElement("afterend", note);
    input.addEventListener("input", () => { // corrected: the complaint goes
      note.remove();
      input.removeAttribute("aria-invalid");
    }, { once: true });
  } else if (typeof fallback === "function") {
    fallback(message);
  } else if (fallback) {
    fallback.textContent = message;
  }
  return message;
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

// Page furniture every page shares: language switch, sign-in (token or sign-in code, typed or from
// #sign-in=CODE) and sign-out. `identify` loads who the credentials belong to and answers the data
// passed to onSignedIn; `checkAccount` may refuse it with a message (a wallet account on /merchant).
function setUpShell({ session, onSignedIn, onSignedOut, checkAccount = () => null, identify = identifyHolder }) {
  translatePage();
  document.getElementById("language").addEventListener("click", toggleLanguage);
  const form = document.getElementById("signin-form");
  const signOut = document.getElementById("signout");
  const error = document.getElementById("signin-error");
  const asksAccount = Boolean(form.elements.account);

  function show(signedIn) {
    document.getElementById("signin").hidden = signedIn;
    document.getElementById("app").hidden = !signedIn;
    signOut.hidden = !signedIn;
  }

  async function signIn(credentials) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = "";
    clearErrors(form);
    try {
      const fields = await credentials();
      session.clear();
      session.save(fields);
      const data = await identify(session);
      const problem = checkAccount(data);
      if (problem) throw new Error(problem);
      form.reset();
      show(true);
      onSignedIn(data);
    } catch (failure) {
      session.clear();
      if (failure instanceof ApiError) showError(failure, { form, fallback: error });
      else error.textContent = failure.message;
    } finally {
      button.disabled = false;
    }
  }

  const withCode = (code) => signIn(async () => session.call("POST", "/v1/auth/sign-in", { code }, { signedIn: false }));

  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const code = form.elements.code.value.replace(/\D/g, "");
    const token = form.elements.token.value.trim().slice(0, TOKEN_LENGTH_MAX);
    const accountId = asksAccount ? form.elements.account.value.trim().slice(0, ACCOUNT_ID_LENGTH_MAX) : null;
    error.textContent = "";
    if (code) {
      if (code.length < SIGN_IN_CODE_DIGITS_MIN || code.length > SIGN_IN_CODE_DIGITS_MAX) {
        error.textContent = t("signin.code.invalid", { min: SIGN_IN_CODE_DIGITS_MIN, max: SIGN_IN_CODE_DIGITS_MAX });
        return;
      }
      withCode(code);
    } else if (token && (accountId || !asksAccount)) {
      signIn(async () => (asksAccount ? { account_id: accountId, token } : { token }));
    } else {
      error.textContent = t(asksAccount ? "signin.missing" : "signin.missing.staff");
    }
  });

  function signOutNow(message = "") {
    session.clear();
    onSignedOut();
    show(false);
    error.textContent = message;
  }

  // Shows a failed call's message; a token that stopped working signs the device out.
  function failed(failure, showMessage, form = null) {
    if (failure.code === "unauthorized") signOutNow(errorMessage(failure));
    else showError(failure, { form, fallback: showMessage });
  }

  signOut.addEventListener("click", () => signOutNow());

  // A sign-in link (a printed card's QR, a link from staff): the code is used once, and taken out of
  // the address bar at once so it is neither bookmarked nor shown to anyone looking at the screen.
  // Whoever was signed in on this device before makes way for the person the code belongs to.
  function signInFromAddress() {
    const fragment = SIGN_IN_FRAGMENT.exec(location.hash);
    if (!fragment) return false;
    history.replaceState(null, "", location.pathname + location.search);
    if (session.signedIn) signOutNow();
    show(false);
    withCode(fragment[1]);
    return true;
  }

  window.addEventListener("hashchange", signInFromAddress);
  if (!signInFromAddress()) {
    show(session.signedIn);
    if (session.signedIn) onSignedIn(null);
  }
  return { failed, signOut: signOutNow };
}

// Who a holder's credentials belong to: the account itself (also proves the token matches it). Its
// kind and community are kept with the session, for the page modules that need them (wishes.js).
async function identifyHolder(session) {
  if (!session.accountId) throw new Error(t("signin.wrong_kind.staff"));
  const account = await session.call("GET", `/v1/accounts/${encodeURIComponent(session.accountId)}`);
  session.save({ kind: account.kind, community_id: account.community_id });
  return account;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
