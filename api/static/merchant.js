// /merchant: a shopkeeper takes a payment by QR code (camera on every browser) or typed code, hears and
// sees the confirmation, and follows today's sales, any month's sales and what the fund will repay.
"use strict";

const AMOUNT_YUAN_MAX = 99999;
const CODE_DIGITS_MIN = 18; // the contract: phone codes have at least 18 digits, printed cards more
const CODE_DIGITS_MAX = 64;
const CODE_GROUP_DIGITS = 4; // typed codes are shown as the wallet shows them: 1234 5678 …
const REDEMPTIONS_PAGE_LIMIT = 500;
const REDEMPTIONS_PAGES_MAX = 20; // 10 000 sales in a month is far beyond a neighbourhood shop
const HISTORY_MONTHS = 12; // months offered in the history's month picker
const FEN_PER_YUAN = 100;
const BPS_PER_PERCENT = 100;
// Answers after which the sale may or may not have been recorded: retry with the same key.
const RETRYABLE_CODES = new Set(["network", "unavailable", "outcome_unknown", "internal_error", "concurrency_conflict"]);
// Full-width digits typed with a Chinese keyboard are the same digits.
const FULL_WIDTH_DIGITS = /[０-９]/g;
const DECIMAL_AMOUNT = /^\d*[.,，。．]\d*$/;

const session = new Session("jindou.merchant");
const $ = (id) => document.getElementById(id);
const merchantPath = () => `/v1/merchants/${encodeURIComponent(session.accountId)}`;

// The sale being tried: its Idempotency-Key is reused only while the same code and amount are retried
// after an unclear failure, so a flaky network never charges a customer twice.
let attempt = null;
let todaySales = [];
let monthSales = [];
let monthSummary = null;
let shell = null;
let scanner = null;
const reverseKeys = new Map(); // redemption id → the key of its pending reversal

function digitsOf(text) {
  return text.replace(FULL_WIDTH_DIGITS, (digit) => String(digit.charCodeAt(0) - 0xff10)).replace(/\D/g, "");
}

function groupDigits(digits) {
  return digits.replace(new RegExp(`(\\d{${CODE_GROUP_DIGITS}})(?=\\d)`, "g"), "$1 ");
}

// {amount} for a whole number of yuan in range, else {problem: the message to show}. A decimal is
// refused as such, never read as its digits ("8.50" is not 850).
function readAmount() {
  const typed = $("amount").value.trim().replace(FULL_WIDTH_DIGITS, (digit) => String(digit.charCodeAt(0) - 0xff10));
  if (DECIMAL_AMOUNT.test(typed) && /\d/.test(typed)) {
    const whole = Math.max(1, Math.floor(Number(typed.replace(/[,，。．]/, ".")) || 0));
    return { problem: t("sale.decimal_amount", { typed, whole }) };
  }
  const amount = Number(typed);
  if (/^\d+$/.test(typed) && amount >= 1 && amount <= AMOUNT_YUAN_MAX) return { amount };
  return { problem: t("sale.invalid_amount", { max: AMOUNT_YUAN_MAX }) };
}

function readCode() {
  const code = digitsOf($("code").value);
  return code.length >= CODE_DIGITS_MIN && code.length <= CODE_DIGITS_MAX ? code : null;
}

function setSaleError(message) {
  $("sale-error").textContent = message;
}

async function takePayment(submitted) {
  submitted.preventDefault();
  if ($("confirm").disabled) return; // one request per sale at a time, however fast the taps
  const { amount, problem } = readAmount();
  const code = readCode();
  if (problem) {
    setSaleError(problem);
    $("amount").focus();
    return;
  }
  if (code === null) {
    setSaleError(t("sale.invalid_code", { min: CODE_DIGITS_MIN, max: CODE_DIGITS_MAX }));
    $("code").focus();
    return;
  }
  if (!attempt || attempt.code !== code || attempt.amount !== amount) {
    attempt = { key: newIdempotencyKey(), code, amount };
  }
  setSaleError("");
  setBusy(true);
  try {
    const { data } = await session.request("POST", "/v1/redemptions", {
      body: { payment_code: code, amount }, idempotencyKey: attempt.key,
    });
    attempt = null;
    showReceipt(data);
    loadToday();
    loadMonth();
  } catch (error) {
    if (RETRYABLE_CODES.has(error.code) || error.status >= 500) {
      setSaleError(t("sale.retry_note"));
    } else {
      attempt = null;
      const specific = refusalMessage(error);
      if (specific) setSaleError(specific);
      else shell.failed(error, setSaleError);
    }
  } finally {
    setBusy(false);
  }
}

// The refusals a shopkeeper can act on, in words that say what to do (null: the general message).
function refusalMessage(error) {
  if (error.code === "invalid_payment_code") {
    const byReason = { used: "sale.code_used", replaced: "sale.card_replaced", frozen: "sale.card_frozen" };
    const key = byReason[error.details.reason];
    return key ? t(key) : null;
  }
  if (error.code === "daily_limit_exceeded" && Number.isInteger(error.details.remaining)) {
    const remaining = error.details.remaining;
    return remaining > 0 ? t("sale.daily_limit_left", { remaining: formatNumber(remaining) }) : t("sale.daily_limit_none");
  }
  return null;
}

function setBusy(busy) {
  const button = $("confirm");
  button.disabled = busy;
  button.textContent = t(busy ? "sale.sending" : "sale.confirm");
  button.setAttribute("aria-busy", String(busy));
}

function showReceipt(sale) {
  const spoken = t("confirm.spoken", { amount: formatNumber(sale.amount) });
  $("receipt-spoken").textContent = spoken;
  $("receipt-amount").textContent = formatNumber(sale.amount);
  $("receipt-welfare").textContent = formatNumber(sale.funded.welfare);
  $("receipt-bean").textContent = formatNumber(sale.funded.bean);
  $("receipt-customer").textContent = maskId(sale.customer_id);
  $("receipt-time").textContent = clockTime(sale.occurred_at, true);
  $("receipt-id").textContent = maskId(sale.id);
  $("sale").hidden = true;
  $("receipt").hidden = false;
  $("receipt").focus();
  say(spoken);
}

// Spoken confirmation, so the shopkeeper need not look: only where the browser can speak.
function say(text) {
  if (!("speechSynthesis" in window) || typeof SpeechSynthesisUtterance !== "function") return;
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = document.documentElement.lang;
  speechSynthesis.cancel();
  speechSynthesis.speak(utterance);
}

function nextSale() {
  $("sale-form").reset();
  setSaleError("");
  $("receipt").hidden = true;
  $("sale").hidden = false;
  $("amount").focus();
}

// --- Sales of a period (today's, and any month's) ---------------------------------------------------

async function fetchPeriod(period) {
  const sales = [];
  let cursor = null;
  for (let page = 0; page < REDEMPTIONS_PAGES_MAX; page += 1) {
    const query = new URLSearchParams({ period, limit: String(REDEMPTIONS_PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const { data } = await session.request("GET", `${merchantPath()}/redemptions?${query}`);
    sales.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return sales;
}

const newestFirst = (a, b) => Date.parse(b.occurred_at) - Date.parse(a.occurred_at);

async function loadToday() {
  try {
    const periods = await Promise.all(currentPeriods().map(fetchPeriod));
    const byId = new Map(periods.flat().filter((sale) => isToday(sale.occurred_at)).map((sale) => [sale.id, sale]));
    todaySales = [...byId.values()].sort(newestFirst);
    renderToday();
  } catch (error) {
    shell.failed(error, (message) => { $("today-status").textContent = message; });
  }
}

function renderToday() {
  const completed = todaySales.filter((sale) => sale.status === "completed");
  const sum = (pick) => completed.reduce((total, sale) => total + pick(sale), 0);
  $("total-count").textContent = formatNumber(completed.length);
  $("total-amount").textContent = formatNumber(sum((sale) => sale.amount));
  $("total-welfare").textContent = formatNumber(sum((sale) => sale.funded.welfare));
  $("total-bean").textContent = formatNumber(sum((sale) => sale.funded.bean));
  renderSales($("today-list"), todaySales, t("today.empty"), false);
}

function renderSales(list, sales, emptyText, inHistory) {
  list.replaceChildren(...sales.map((sale) => saleRow(sale, inHistory)));
  if (sales.length === 0) list.append(element("li", "empty", emptyText));
}

function saleRow(sale, inHistory) {
  const time = clockTime(sale.occurred_at);
  const when = inHistory ? `${localParts(sale.occurred_at)?.date.slice(5) ?? ""} ${time}` : time;
  const row = element("li", sale.status === "reversed" ? "sale reversed" : "sale");
  row.dataset.id = sale.id;
  const main = element("div", "sale-main");
  main.append(element("span", "sale-time", when), element("span", "sale-amount", `¥${formatNumber(sale.amount)}`));
  const meta = element("div", "sale-meta");
  meta.append(
    element("span", "welfare", `${t("today.welfare")} ${formatNumber(sale.funded.welfare)}`),
    element("span", "bean", `${t("today.bean")} ${formatNumber(sale.funded.bean)}`),
    element("span", "customer", maskId(sale.customer_id)),
  );
  const details = element("div", "sale-details");
  details.append(main, meta);
  row.append(details);
  // Today's sales can be reversed here; the month's list is for reading.
  if (sale.status === "reversed") {
    row.append(element("span", "badge", t("today.reversed")));
  } else if (sale.settlement_id) {
    row.append(element("span", "badge", t("history.settled")));
  } else if (!inHistory) {
    const button = element("button", "danger-outline", t("today.reverse"));
    button.type = "button";
    button.setAttribute("aria-label", t("today.reverse.label", { time: when, amount: sale.amount }));
    button.addEventListener("click", () => askToReverse(sale));
    row.append(button);
  }
  return row;
}

function askToReverse(sale) {
  const dialog = $("reverse-dialog");
  $("reverse-body").textContent = t("reverse.body", {
    time: clockTime(sale.occurred_at), amount: formatNumber(sale.amount), customer: maskId(sale.customer_id),
  });
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "confirm") reverse(sale);
  };
  dialog.showModal();
}

async function reverse(sale) {
  if (!reverseKeys.has(sale.id)) reverseKeys.set(sale.id, newIdempotencyKey());
  const status = $("today-status");
  status.textContent = "";
  try {
    await session.request("POST", `/v1/redemptions/${encodeURIComponent(sale.id)}/reverse`, {
      idempotencyKey: reverseKeys.get(sale.id),
    });
    reverseKeys.delete(sale.id);
    status.textContent = t("reverse.done", { amount: formatNumber(sale.amount) });
  } catch (error) {
    if (!RETRYABLE_CODES.has(error.code)) reverseKeys.delete(sale.id);
    shell.failed(error, (message) => { status.textContent = message; });
  }
  loadToday();
  loadMonth();
}

// --- History by month, with what the fund will repay ---------------------------------------------

// The latest "now" month anywhere on Earth, and the months before it.
function recentMonths() {
  const latest = currentPeriods().at(-1);
  let [year, month] = latest.split("-").map(Number);
  const months = [];
  for (let index = 0; index < HISTORY_MONTHS; index += 1) {
    months.push(`${year}-${String(month).padStart(2, "0")}`);
    [year, month] = month === 1 ? [year - 1, 12] : [year, month - 1];
  }
  return months;
}

function fillMonths() {
  const select = $("history-month");
  const chosen = select.value;
  select.replaceChildren(...recentMonths().map((period) => {
    const [year, month] = period.split("-");
    const option = element("option", "", t("history.month.option", { year, month: Number(month) }));
    option.value = period;
    return option;
  }));
  const current = currentPeriods()[0];
  select.value = chosen || current;
}

async function loadMonth() {
  const period = $("history-month").value;
  if (!period) return;
  $("history-status").textContent = "";
  try {
    const [summary, sales] = await Promise.all([
      session.call("GET", `${merchantPath()}/months/${encodeURIComponent(period)}`), fetchPeriod(period),
    ]);
    if ($("history-month").value !== period) return; // another month was picked meanwhile
    monthSummary = summary;
    monthSales = sales.sort(newestFirst);
    renderMonth();
  } catch (error) {
    shell.failed(error, (message) => { $("history-status").textContent = message; });
  }
}

function yuanOfFen(fen) {
  const yuan = Math.floor(fen / FEN_PER_YUAN);
  const rest = fen % FEN_PER_YUAN;
  return rest ? `${formatNumber(yuan)}.${String(rest).padStart(2, "0")}` : formatNumber(yuan);
}

function renderMonth() {
  if (!monthSummary) return;
  const summary = monthSummary;
  $("month-count").textContent = formatNumber(summary.sales);
  $("month-redeemed").textContent = formatNumber(summary.redeemed);
  $("month-welfare").textContent = formatNumber(summary.funded.welfare);
  $("month-bean").textContent = formatNumber(summary.funded.bean);
  $("month-repayment").textContent = `¥${yuanOfFen(summary.total_fen)}`;
  $("month-repayment-detail").textContent = t("history.repayment.detail", {
    reimbursement: yuanOfFen(summary.reimbursement_fen), rebate: yuanOfFen(summary.rebate_fen),
    rate: summary.rebate_rate_bps / BPS_PER_PERCENT,
  });
  renderSales($("history-list"), monthSales, t("history.empty"), true);
}

// --- Scanning with the camera ----------------------------------------------------------------------

async function startScan() {
  const dialog = $("scanner");
  scanner = new QrScanner($("scanner-video"), acceptScanned);
  try {
    dialog.showModal();
    await scanner.start();
    $("scanner-decoder").textContent = t(`scanner.decoder.${scanner.decoder.name}`);
  } catch {
    stopScan();
    setSaleError(t("scanner.failed"));
  }
}

// A payment QR holds the code's digits (some scanners add a prefix); anything else is ignored.
function acceptScanned(text) {
  const digits = digitsOf(text);
  if (digits.length < CODE_DIGITS_MIN || digits.length > CODE_DIGITS_MAX) return false;
  $("code").value = groupDigits(digits);
  setSaleError("");
  closeScanner();
  (readAmount().problem ? $("amount") : $("confirm")).focus();
  return true;
}

function stopScan() {
  scanner?.stop();
  closeScanner();
}

function closeScanner() {
  scanner = null;
  if ($("scanner").open) $("scanner").close();
}

// --- Start ----------------------------------------------------------------------------------------

// The code field keeps digits only, grouped by four as the wallet shows them; the caret stays after
// the same digit while the spaces move.
function groupCodeWhileTyping(input) {
  input.addEventListener("input", () => {
    const caret = input.selectionStart ?? input.value.length;
    const digitsBeforeCaret = digitsOf(input.value.slice(0, caret)).length;
    const grouped = groupDigits(digitsOf(input.value));
    if (grouped === input.value) return;
    input.value = grouped;
    let position = 0;
    for (let seen = 0; position < grouped.length && seen < digitsBeforeCaret; position += 1) {
      if (grouped[position] !== " ") seen += 1;
    }
    input.setSelectionRange(position, position);
  });
}

// The amount is checked as it is typed, so "8.50" is refused at once rather than read as 850.
function checkAmountWhileTyping(input) {
  input.addEventListener("input", () => {
    const { problem } = readAmount();
    const decimal = DECIMAL_AMOUNT.test(input.value.trim()) && /\d/.test(input.value);
    setSaleError(decimal ? problem : "");
    input.setAttribute("aria-invalid", String(decimal));
  });
}

function start() {
  shell = setUpShell({
    session,
    checkAccount: (account) => (account.kind === "merchant" ? null : t("signin.wrong_kind.merchant")),
    onSignedIn: (account) => {
      $("shop-name").textContent = account?.display_name ?? "";
      if (!account) refreshShopName();
      nextSale();
      fillMonths();
      loadToday();
      loadMonth();
    },
    onSignedOut: () => {
      attempt = null;
      todaySales = [];
      monthSales = [];
      monthSummary = null;
      renderToday();
      $("history-list").replaceChildren();
      $("today-status").textContent = "";
    },
  });
  checkAmountWhileTyping($("amount"));
  groupCodeWhileTyping($("code"));
  $("sale-form").addEventListener("submit", takePayment);
  $("next-sale").addEventListener("click", nextSale);
  $("today-refresh").addEventListener("click", () => { loadToday(); loadMonth(); });
  $("history-month").addEventListener("change", loadMonth);
  $("scan").addEventListener("click", startScan);
  $("scanner-cancel").addEventListener("click", stopScan);
  $("scanner").addEventListener("cancel", stopScan);
  document.addEventListener("languagechange", () => {
    renderToday();
    fillMonths();
    renderMonth();
    setBusy($("confirm").disabled);
  });
  $("scan").hidden = !QrScanner.available;
}

async function refreshShopName() {
  try {
    const { data } = await session.request("GET", `/v1/accounts/${encodeURIComponent(session.accountId)}`);
    $("shop-name").textContent = data.display_name;
  } catch (error) {
    shell.failed(error, setSaleError);
  }
}

start();
