// /wallet: a volunteer or beneficiary sees the balance and shows a fresh payment QR code.
"use strict";

const CODE_REFRESH_LEAD_MS = 15000; // a new code appears this long before the old one expires
const CODE_REFRESH_DELAY_MIN_MS = 5000; // never faster, whatever the clocks say
// Every code is an event in the ledger's store: a wallet left open on a table stops asking for new
// codes after this many refreshes nobody looked at, until someone touches the screen.
const CODE_REFRESHES_UNATTENDED_MAX = 5;
const TICK_MS = 1000;
const BALANCE_POLL_MS = 10000; // notice a payment soon after the merchant takes it
const ENTRIES_SHOWN = 10;

const session = new Session("jindou.wallet");
const $ = (id) => document.getElementById(id);
const accountPath = () => `/v1/accounts/${encodeURIComponent(session.accountId)}`;

let shell = null;
let current = null; // {code, refreshAtMs} for the code on screen
let loadingCode = false;
let refreshesUnattended = 0;
let paused = false; // no code on screen until someone looks at the phone again
let lastBalances = null;
let timers = [];

// --- Balance and entries --------------------------------------------------------------------------

async function loadAccount() {
  try {
    const { data } = await session.request("GET", accountPath());
    $("holder-name").textContent = data.display_name;
    $("balance-bean").textContent = formatNumber(data.balances.bean);
    $("balance-welfare").textContent = formatNumber(data.balances.welfare);
    const before = lastBalances;
    lastBalances = data.balances;
    if (before && (before.bean !== data.balances.bean || before.welfare !== data.balances.welfare)) {
      loadEntries();
      const spent = data.balances.bean < before.bean || data.balances.welfare < before.welfare;
      if (spent) {
        $("code-notice").textContent = t("code.paid");
        newCode(); // the code on screen was most likely the one just used
      }
    }
  } catch (error) {
    shell.failed(error, (message) => { $("code-error").textContent = message; });
  }
}

async function loadEntries() {
  try {
    const { data } = await session.request("GET", `${accountPath()}/entries?limit=${ENTRIES_SHOWN}`);
    const list = $("entries-list");
    list.replaceChildren(...data.items.map(entryRow));
    if (data.items.length === 0) list.append(element("li", "empty", t("entries.empty")));
  } catch (error) {
    shell.failed(error, (message) => { $("code-error").textContent = message; });
  }
}

function entryRow(entry) {
  const key = `entry.${entry.type}`;
  const row = element("li", "entry");
  const what = element("div", "entry-what");
  const date = localParts(entry.occurred_at)?.date.slice(5) ?? "";
  what.append(element("span", "entry-type", hasMessage(key) ? t(key) : t("entry.other")),
    element("span", "entry-time", `${date} ${clockTime(entry.occurred_at)}`));
  const sign = entry.amount > 0 ? "+" : "−";
  const amount = element("span", `entry-amount ${entry.asset} ${entry.amount > 0 ? "in" : "out"}`,
    `${sign}${formatNumber(Math.abs(entry.amount))} ${t(`balance.${entry.asset}`)}`);
  row.append(what, amount);
  return row;
}

// --- The payment code -----------------------------------------------------------------------------

// How far the server's clock is ahead of this phone's, so a phone set to the wrong time still
// refreshes its code before the server considers it expired.
function serverClockSkewMs(response) {
  const serverNowMs = Date.parse(response.headers.get("Date") || "");
  return Number.isNaN(serverNowMs) ? 0 : serverNowMs - Date.now();
}

async function newCode() {
  if (loadingCode) return;
  loadingCode = true;
  paused = false;
  $("code-timer").textContent = t("code.refreshing");
  $("code-error").textContent = "";
  try {
    const { data, response } = await session.request("POST", `${accountPath()}/payment-codes`);
    const expiresAtMs = Date.parse(data.expires_at) - serverClockSkewMs(response);
    const { data: svg } = await session.request("GET", `${accountPath()}/payment-codes/${encodeURIComponent(data.code)}.svg`,
      { accept: "image/svg+xml" });
    showQr(svg);
    $("code-digits").textContent = data.code.replace(/(\d{4})(?=\d)/g, "$1 ");
    current = { code: data.code, refreshAtMs: Math.max(expiresAtMs - CODE_REFRESH_LEAD_MS, Date.now() + CODE_REFRESH_DELAY_MIN_MS) };
  } catch (error) {
    current = null;
    clearCode();
    shell.failed(error, (message) => { $("code-error").textContent = message; });
  } finally {
    loadingCode = false;
    tick();
  }
}

// The SVG comes from our own server; it is still parsed as data and stripped of anything active.
function showQr(svgText) {
  const parsed = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = parsed.documentElement;
  if (svg.localName !== "svg" || parsed.getElementsByTagName("parsererror").length > 0) {
    throw new ApiError("unknown", 0, "the payment code image is not an SVG");
  }
  for (const node of svg.querySelectorAll("script, foreignObject, a")) node.remove();
  for (const node of [svg, ...svg.querySelectorAll("*")]) {
    for (const attribute of [...node.attributes]) {
      if (attribute.name.toLowerCase().startsWith("on")) node.removeAttribute(attribute.name);
    }
  }
  if (!svg.hasAttribute("viewBox") && svg.hasAttribute("width") && svg.hasAttribute("height")) {
    svg.setAttribute("viewBox", `0 0 ${parseFloat(svg.getAttribute("width"))} ${parseFloat(svg.getAttribute("height"))}`);
  }
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  $("qr").replaceChildren(document.importNode(svg, true));
}

function clearCode() {
  $("qr").replaceChildren();
  $("code-digits").textContent = "";
  $("code-timer").textContent = "";
}

function tick() {
  if (!current) return;
  const remainingMs = current.refreshAtMs - Date.now();
  if (remainingMs > 0) {
    $("code-timer").textContent = t("code.expires", { seconds: Math.ceil(remainingMs / 1000) });
  } else if (document.visibilityState === "visible" && refreshesUnattended < CODE_REFRESHES_UNATTENDED_MAX) {
    refreshesUnattended += 1;
    $("code-notice").textContent = "";
    newCode();
  } else {
    current = null;
    paused = true;
    clearCode();
    $("code-timer").textContent = t("code.paused");
  }
}

// Someone is looking: start counting unattended refreshes again, and bring a paused code back.
function attended() {
  refreshesUnattended = 0;
  if (paused && session.signedIn) newCode();
}

// --- Start ----------------------------------------------------------------------------------------

function startTimers() {
  stopTimers();
  timers = [
    setInterval(tick, TICK_MS),
    setInterval(() => { if (document.visibilityState === "visible") loadAccount(); }, BALANCE_POLL_MS),
  ];
}

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

function start() {
  shell = setUpShell({
    session,
    checkAccount: (account) => (account.kind === "merchant" ? t("signin.wrong_kind.wallet") : null),
    onSignedIn: () => {
      lastBalances = null;
      loadAccount();
      loadEntries();
      newCode();
      startTimers();
    },
    onSignedOut: () => {
      stopTimers();
      current = null;
      paused = false;
      lastBalances = null;
      clearCode();
      $("entries-list").replaceChildren();
      $("code-notice").textContent = "";
    },
  });
  $("code-refresh").addEventListener("click", () => {
    $("code-notice").textContent = "";
    newCode();
  });
  document.addEventListener("pointerdown", attended);
  document.addEventListener("keydown", attended);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && session.signedIn) {
      loadAccount();
      attended();
      tick();
    }
  });
  document.addEventListener("languagechange", () => {
    if (paused) $("code-timer").textContent = t("code.paused");
    tick();
    if (session.signedIn) loadEntries();
  });
}

start();
