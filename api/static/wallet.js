// /wallet: a volunteer or beneficiary sees the balance (in yuan too) and shows a fresh payment QR code;
// a volunteer also reports, follows its reports, donates to an elder and sees this month's earnings;
// elder mode (beneficiaries by default, a switch for anyone) is big text, welfare first, no empty tiles.
"use strict";

const CODE_REFRESH_LEAD_MS = 15000; // a new code appears this long before the old one expires
const CODE_REFRESH_DELAY_MIN_MS = 5000; // never faster, whatever the clocks say
// Every code is an event in the ledger's store: a wallet left open on a table stops asking for new
// codes after this many refreshes nobody looked at, until someone touches the screen.
const CODE_REFRESHES_UNATTENDED_MAX = 5;
const TICK_MS = 1000;
const BALANCE_POLL_MS = 10000; // notice a payment soon after the merchant takes it
const ENTRIES_SHOWN = 10;
const LIST_PAGE_LIMIT = 100;
const LIST_PAGES_MAX = 5; // shops, elders and this month's entries: a neighbourhood's worth
const REPORTS_SHOWN = 20;
const DONATION_BEANS_MAX = 99999;
const REPORT_DESCRIPTION_LENGTH_MAX = 2000;
const ELDER_MODE_STORAGE_KEY = "jindou.wallet.elder";
const REPORT_CATEGORIES = ["fire", "security", "dispute", "sanitation", "resident_need"];
const EARNING_TYPES = new Set(["report_award", "dispatch_award"]);
// Answers after which a donation may or may not have been recorded: retry with the same key.
const RETRYABLE_CODES = new Set(["network", "unavailable", "internal_error", "concurrency_conflict"]);

const session = new Session("jindou.wallet");
const $ = (id) => document.getElementById(id);
const accountPath = () => `/v1/accounts/${encodeURIComponent(session.accountId)}`;
const communityPath = () => `/v1/communities/${encodeURIComponent(session.communityId)}`;

let shell = null;
let current = null; // {code, refreshAtMs} for the code on screen
let loadingCode = false;
let refreshesUnattended = 0;
let paused = false; // no code on screen until someone looks at the phone again
let account = null; // the last answer of GET /v1/accounts/{id}
let timers = [];
let shops = [];
let donation = null; // {key, to, amount} while one donation is being tried
let pendingReport = null; // {key, category, description} while one report is being tried
let volunteerLoaded = false;

// --- Elder mode -----------------------------------------------------------------------------------

// Beneficiaries get it unless they switched it off; anyone may switch it on. Remembered on this phone.
function elderMode() {
  const chosen = localStorage.getItem(ELDER_MODE_STORAGE_KEY);
  if (chosen === "on" || chosen === "off") return chosen === "on";
  return (account?.kind ?? session.kind) === "beneficiary";
}

function applyElderMode() {
  const on = elderMode();
  document.body.classList.toggle("elder", on);
  const button = $("elder-switch");
  button.setAttribute("aria-pressed", String(on));
  button.textContent = t(on ? "elder.switch.off" : "elder.switch");
  renderBalances();
  renderShops();
}

function toggleElderMode() {
  localStorage.setItem(ELDER_MODE_STORAGE_KEY, elderMode() ? "off" : "on");
  applyElderMode();
}

// --- Balance, this month, entries ----------------------------------------------------------------

async function loadAccount({ paidNotice = true } = {}) {
  try {
    const { data } = await session.request("GET", accountPath());
    const before = account?.balances;
    account = data;
    // Sign-in keeps both (api.js); a session saved before it did learns them here.
    if (session.communityId !== data.community_id || session.kind !== data.kind) {
      session.save({ community_id: data.community_id, kind: data.kind });
    }
    $("holder-name").textContent = data.display_name;
    applyElderMode();
    showVolunteerParts();
    if (before && (before.bean !== data.balances.bean || before.welfare !== data.balances.welfare)) {
      loadEntries();
      loadMonthSummary();
      const spent = data.balances.bean < before.bean || data.balances.welfare < before.welfare;
      if (spent && paidNotice) {  // a pledge from this page is not a payment at a till
        $("code-notice").textContent = t("code.paid");
        newCode(); // the code on screen was most likely the one just used
      }
    }
  } catch (error) {
    shell.failed(error, (message) => { $("code-error").textContent = message; });
  }
}

// Tiles say what the units are worth in yuan. In elder mode an empty tile is left out (nobody
// needs "金豆 0"); a volunteer never holds welfare credits, so never sees that tile.
function renderBalances() {
  if (!account) return;
  const { bean, welfare } = account.balances;
  const elder = document.body.classList.contains("elder");
  $("balance-bean").textContent = formatNumber(bean);
  $("balance-welfare").textContent = formatNumber(welfare);
  $("balance-welfare").dataset.unit = t("unit.yuan");
  $("bean-yuan").textContent = t("balance.bean.yuan", { amount: formatNumber(bean) });
  // In elder mode the tile already reads "50 元" (wallet.css): the line below says only where it works.
  $("welfare-yuan").textContent = elder ? t("balance.welfare.where") : t("balance.welfare.yuan", { amount: formatNumber(welfare) });
  const showWelfare = account.kind === "beneficiary" && !(elder && welfare === 0);
  const showBean = !(elder && bean === 0 && (welfare > 0 || account.kind === "beneficiary"));
  $("tile-welfare").hidden = !showWelfare;
  $("tile-bean").hidden = !showBean;
  $("tile-empty").hidden = showWelfare || showBean;
  $("balance-empty").textContent = `0 ${t("unit.yuan")}`;
}

async function loadEntries() {
  try {
    const { data } = await session.request("GET", `${accountPath()}/entries?limit=${ENTRIES_SHOWN}`);
    const list = $("entries-list");
    list.replaceChildren(...data.items.map(entryRow));
    if (data.items.length === 0) list.append(element("li", "empty", t("entries.empty")));
    markPublished(data.items);
  } catch (error) {
    shell.failed(error, (message) => { $("code-error").textContent = message; });
  }
}

function monthLabel(period) {
  const [year, month] = period.split("-");
  return t("entry.period", { year, month: Number(month) });
}

function categoryLabel(category) {
  const key = `category.${category}`;
  return hasMessage(key) ? t(key) : category;
}

// What an entry was for: the shop, the elder or donor, the report's category, the allowance's month.
function entryReason(entry) {
  const name = entry.counterparty_name;
  const plain = hasMessage(`entry.${entry.type}`) ? t(`entry.${entry.type}`) : t("entry.other");
  if (entry.type === "redemption" || entry.type === "reversal") {
    return name ? t(`entry.${entry.type}.at`, { name }) : plain;
  }
  if (entry.type === "donation" && name) {
    return t(entry.amount < 0 ? "entry.donation.to" : "entry.donation.from", { name });
  }
  if (EARNING_TYPES.has(entry.type) && entry.report_category) return `${plain} · ${categoryLabel(entry.report_category)}`;
  if (entry.type === "welfare_allowance" && entry.period) return `${plain} · ${monthLabel(entry.period)}`;
  return plain;
}

function entryRow(entry) {
  const row = element("li", "entry");
  row.dataset.entryId = entry.entry_id;
  const what = element("div", "entry-what");
  const date = localParts(entry.occurred_at)?.date.slice(5) ?? "";
  what.append(element("span", "entry-type entry-reason", entryReason(entry)),
    element("span", "entry-time", `${date} ${clockTime(entry.occurred_at)}`));
  const sign = entry.amount > 0 ? "+" : "−";
  const amount = element("span", `entry-amount ${entry.asset} ${entry.amount > 0 ? "in" : "out"}`,
    `${sign}${formatNumber(Math.abs(entry.amount))} ${t(`entry.unit.${entry.asset}`)}`);
  row.append(what, amount);
  return row;
}

// The transparency module (when this deployment ships it) checks each entry against the published
// ledger; a verified one is marked beside its reason.
function markPublished(entries) {
  const transparency = window.JindouTransparency;
  if (typeof transparency?.checkEntry !== "function") return;
  for (const entry of entries) {
    transparency.checkEntry(session.accountId, entry.entry_id, session.token).then((result) => {
      const row = $("entries-list").querySelector(`[data-entry-id="${CSS.escape(entry.entry_id)}"] .entry-what`);
      if (result?.verified && result.period && row && !row.querySelector(".entry-proof")) {
        row.append(element("span", "entry-proof", t("entry.proof", { period: result.period })));
      }
    }).catch(() => {});
  }
}

// This month's earnings and the next allowance come from the entries of this month (newest first),
// read in the community's own offset, which every entry's time carries.
async function loadMonthSummary() {
  let earned = 0;
  let latestAllowance = null;
  let thisMonth = dateAtOffset(Date.now(), -new Date().getTimezoneOffset()).slice(0, 7);
  let cursor = null;
  try {
    for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
      const query = new URLSearchParams({ limit: String(LIST_PAGE_LIMIT) });
      if (cursor) query.set("cursor", cursor);
      const { data } = await session.request("GET", `${accountPath()}/entries?${query}`);
      let older = false;
      for (const entry of data.items) {
        const parts = localParts(entry.occurred_at);
        if (!parts) continue;
        thisMonth = dateAtOffset(Date.now(), parts.offsetMinutes).slice(0, 7);
        if (entry.type === "welfare_allowance" && entry.period && (latestAllowance === null || entry.period > latestAllowance)) {
          latestAllowance = entry.period;
        }
        if (parts.date.slice(0, 7) < thisMonth) { older = true; break; }
        if (EARNING_TYPES.has(entry.type) && entry.amount > 0) earned += entry.amount;
      }
      cursor = data.next_cursor;
      if (older || !cursor) break;
    }
  } catch (error) {
    shell.failed(error, (message) => { $("code-error").textContent = message; });
    return;
  }
  const volunteer = account?.kind === "volunteer";
  $("month-earned").hidden = !volunteer;
  $("month-earned").textContent = t("summary.month_earned", { amount: formatNumber(earned) });
  $("next-allowance").hidden = account?.kind !== "beneficiary";
  const issuedUpTo = latestAllowance && latestAllowance > thisMonth ? latestAllowance : thisMonth;
  $("next-allowance").textContent = t("summary.next_allowance", { month: Number(nextPeriod(issuedUpTo).slice(5)) });
}

function nextPeriod(period) {
  const [year, month] = period.split("-").map(Number);
  return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
}

// --- Where to spend -------------------------------------------------------------------------------

async function pagesOf(path) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
    const query = new URLSearchParams({ limit: String(LIST_PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const data = await session.call("GET", `${path}?${query}`);
    items.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

async function loadShops() {
  $("shops-error").textContent = "";
  try {
    shops = await pagesOf(`${communityPath()}/merchants`);
    renderShops();
  } catch (error) {
    shell.failed(error, $("shops-error"));
  }
}

// Welfare-taking shops first for whoever holds welfare; in elder mode only those, if there are any.
function renderShops() {
  if (!account) return;
  const welfareHolder = account.kind === "beneficiary";
  let shown = welfareHolder ? [...shops].sort((a, b) => Number(b.accepts_welfare) - Number(a.accepts_welfare)) : shops;
  if (document.body.classList.contains("elder") && shown.some((shop) => shop.accepts_welfare) && account.balances.bean === 0) {
    shown = shown.filter((shop) => shop.accepts_welfare);
  }
  $("shops-lead").textContent = t(welfareHolder ? "shops.lead.welfare" : "shops.lead.volunteer");
  const list = $("shops-list");
  list.replaceChildren(...shown.map(shopRow));
  if (shown.length === 0) list.append(element("li", "empty", t("shops.empty")));
}

function shopRow(shop) {
  const row = element("li", "shop");
  const name = element("span", "shop-name", shop.display_name);
  const categories = shop.merchant_categories.map((category) =>
    (hasMessage(`shops.category.${category}`) ? t(`shops.category.${category}`) : category));
  if (categories.length) name.append(element("span", "shop-categories", categories.join(" · ")));
  row.append(name);
  if (shop.accepts_welfare) row.append(element("span", "badge takes-welfare", t("shops.takes_welfare")));
  return row;
}

// --- A volunteer's reports and donations ----------------------------------------------------------

function showVolunteerParts() {
  const volunteer = account?.kind === "volunteer";
  for (const part of document.querySelectorAll(".volunteer-only")) part.hidden = !volunteer;
  if (!volunteer || volunteerLoaded) return;
  volunteerLoaded = true;
  fillCategories();
  loadReports();
  loadBeneficiaries();
  mountWishes();
}

function fillCategories() {
  const select = $("report-category");
  const chosen = select.value;
  select.replaceChildren(...REPORT_CATEGORIES.map((category) => {
    const option = element("option", "", categoryLabel(category));
    option.value = category;
    return option;
  }));
  if (chosen) select.value = chosen;
}

async function submitReport(submitted) {
  submitted.preventDefault();
  const form = $("report-form");
  const button = $("report-submit");
  if (button.disabled) return;
  const description = $("report-description").value.trim().slice(0, REPORT_DESCRIPTION_LENGTH_MAX);
  $("report-error").textContent = "";
  $("report-notice").textContent = "";
  clearErrors(form);
  if (!description) {
    $("report-error").textContent = t("report.missing_description");
    $("report-description").focus();
    return;
  }
  button.disabled = true;
  button.textContent = t("report.sending");
  try {
    const category = $("report-category").value;
    // A retry of the same report (the answer was lost) reuses its key, so it is filed once.
    if (!pendingReport || pendingReport.category !== category || pendingReport.description !== description) {
      pendingReport = { key: newIdempotencyKey(), category, description };
    }
    await session.request("POST", "/v1/reports", { body: { category, description }, idempotencyKey: pendingReport.key });
    pendingReport = null;
    form.reset();
    fillCategories();
    $("report-notice").textContent = t("report.done");
    loadReports();
  } catch (error) {
    shell.failed(error, $("report-error"), form);
  } finally {
    button.disabled = false;
    button.textContent = t("report.submit");
  }
}

async function loadReports() {
  try {
    const data = await session.call("GET", `/v1/reports?limit=${REPORTS_SHOWN}`);
    const list = $("reports-list");
    list.replaceChildren(...data.items.map(reportRow));
    if (data.items.length === 0) list.append(element("li", "empty", t("my_reports.empty")));
  } catch (error) {
    shell.failed(error, $("report-error"));
  }
}

function reportRow(report) {
  const row = element("li", "report");
  const what = element("span", "report-what", categoryLabel(report.category));
  const date = localParts(report.submitted_at)?.date.slice(5) ?? "";
  what.append(element("span", "report-detail", `${date} ${report.description}`));
  const statusKey = `my_reports.status.${report.status}`;
  const status = hasMessage(statusKey) ? t(statusKey, { award: report.award ?? 0 }) : report.status;
  row.append(what, element("span", `badge status-${report.status}`, status));
  return row;
}

async function loadBeneficiaries() {
  const select = $("donate-to");
  try {
    const elders = await pagesOf(`${communityPath()}/beneficiaries`);
    const counts = new Map();
    for (const elder of elders) counts.set(elder.display_name, (counts.get(elder.display_name) ?? 0) + 1);
    const choose = element("option", "", t(elders.length ? "donate.choose" : "donate.none"));
    choose.value = "";
    select.replaceChildren(choose, ...elders.map((elder) => {
      // Two residents of the same name are told apart by the start of their account number.
      const label = counts.get(elder.display_name) > 1 ? `${elder.display_name}（${maskId(elder.id)}）` : elder.display_name;
      const option = element("option", "", label);
      option.value = elder.id;
      return option;
    }));
  } catch (error) {
    shell.failed(error, $("donate-error"));
  }
}

async function donate(submitted) {
  submitted.preventDefault();
  const form = $("donate-form");
  const button = $("donate-submit");
  if (button.disabled) return;
  const to = $("donate-to").value;
  const typed = $("donate-amount").value.trim();
  const amount = Number(typed);
  $("donate-error").textContent = "";
  $("donate-notice").textContent = "";
  clearErrors(form);
  if (!to) {
    $("donate-error").textContent = t("donate.missing_recipient");
    return;
  }
  if (!/^\d+$/.test(typed) || amount < 1 || amount > DONATION_BEANS_MAX) {
    $("donate-error").textContent = t("donate.invalid_amount", { max: DONATION_BEANS_MAX });
    $("donate-amount").focus();
    return;
  }
  if (!donation || donation.to !== to || donation.amount !== amount) donation = { key: newIdempotencyKey(), to, amount };
  const name = $("donate-to").selectedOptions[0].textContent;
  button.disabled = true;
  button.textContent = t("donate.sending");
  try {
    await session.request("POST", "/v1/donations", { body: { to_account_id: to, amount }, idempotencyKey: donation.key });
    donation = null;
    form.reset();
    $("donate-notice").textContent = t("donate.done", { name, amount: formatNumber(amount) });
    loadAccount();
    loadEntries();
  } catch (error) {
    if (RETRYABLE_CODES.has(error.code) || error.status >= 500) {
      $("donate-error").textContent = t("donate.retry_note");
    } else {
      donation = null;
      shell.failed(error, $("donate-error"), form);
    }
  } finally {
    button.disabled = false;
    button.textContent = t("donate.submit");
  }
}

// The wish wall, when this deployment ships it.
function mountWishes() {
  const wishes = window.JindouWishes;
  if (typeof wishes?.mountWallet !== "function") {
    $("wishes").hidden = true;
    return;
  }
  wishes.mountWallet($("wishes"), session);
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

// The wish wall module (wishes.js) says when a pledge moved this holder's beans.
document.addEventListener("jindou:balance-changed", () => loadAccount({ paidNotice: false }));

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
    checkAccount: (holder) => (holder.kind === "merchant" ? t("signin.wrong_kind.wallet") : null),
    onSignedIn: async () => {
      account = null;
      volunteerLoaded = false;
      applyElderMode();
      await loadAccount();
      loadEntries();
      loadMonthSummary();
      if (session.communityId) loadShops();
      newCode();
      startTimers();
    },
    onSignedOut: () => {
      stopTimers();
      current = null;
      paused = false;
      account = null;
      shops = [];
      donation = null;
      volunteerLoaded = false;
      clearCode();
      for (const list of ["entries-list", "shops-list", "reports-list"]) $(list).replaceChildren();
      for (const part of document.querySelectorAll(".volunteer-only")) part.hidden = true;
      $("wishes").replaceChildren();
      $("month-earned").hidden = true;
      $("next-allowance").hidden = true;
      $("code-notice").textContent = "";
      applyElderMode();
    },
  });
  $("code-refresh").addEventListener("click", () => {
    $("code-notice").textContent = "";
    newCode();
  });
  $("elder-switch").addEventListener("click", toggleElderMode);
  $("report-form").addEventListener("submit", submitReport);
  $("donate-form").addEventListener("submit", donate);
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
    applyElderMode();
    if (session.signedIn) {
      loadEntries();
      loadMonthSummary();
      if (account?.kind === "volunteer") {
        fillCategories();
        loadReports();
      }
    }
  });
}

start();
