// /merchant: a shopkeeper takes a payment by QR code or typed code, sees the receipt and today's sales.
"use strict";

const AMOUNT_YUAN_MAX = 99999;
const CODE_DIGITS_MIN = 18; // the contract: phone codes have at least 18 digits, printed cards more
const CODE_DIGITS_MAX = 64;
const REDEMPTIONS_PAGE_LIMIT = 500;
const REDEMPTIONS_PAGES_MAX = 20; // 10 000 sales in a month is far beyond a neighbourhood shop
const SCAN_INTERVAL_MS = 250;
// Answers after which the sale may or may not have been recorded: retry with the same key.
const RETRYABLE_CODES = new Set(["network", "unavailable", "outcome_unknown", "internal_error", "concurrency_conflict"]);

const session = new Session("jindou.merchant");
const $ = (id) => document.getElementById(id);

// The sale being tried: its Idempotency-Key is reused only while the same code and amount are retried
// after an unclear failure, so a flaky network never charges a customer twice.
let attempt = null;
let todaySales = [];
let shell = null;
const reverseKeys = new Map(); // redemption id → the key of its pending reversal

function digitsOf(text) {
  return text.replace(/\D/g, "");
}

function readAmount() {
  const text = $("amount").value.trim();
  const amount = Number(text);
  return /^\d+$/.test(text) && amount >= 1 && amount <= AMOUNT_YUAN_MAX ? amount : null;
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
  const amount = readAmount();
  const code = readCode();
  if (amount === null) {
    setSaleError(t("sale.invalid_amount", { max: AMOUNT_YUAN_MAX }));
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
    const { data } = await session.call("POST", "/v1/redemptions", {
      body: { payment_code: code, amount }, idempotencyKey: attempt.key,
    });
    attempt = null;
    showReceipt(data);
    loadToday();
  } catch (error) {
    if (RETRYABLE_CODES.has(error.code) || error.status >= 500) {
      setSaleError(t("sale.retry_note"));
    } else {
      attempt = null;
      shell.failed(error, setSaleError);
    }
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  const button = $("confirm");
  button.disabled = busy;
  button.textContent = t(busy ? "sale.sending" : "sale.confirm");
  button.setAttribute("aria-busy", String(busy));
}

function showReceipt(sale) {
  $("receipt-amount").textContent = formatNumber(sale.amount);
  $("receipt-welfare").textContent = formatNumber(sale.funded.welfare);
  $("receipt-bean").textContent = formatNumber(sale.funded.bean);
  $("receipt-customer").textContent = maskId(sale.customer_id);
  $("receipt-time").textContent = clockTime(sale.occurred_at, true);
  $("receipt-id").textContent = maskId(sale.id);
  $("sale").hidden = true;
  $("receipt").hidden = false;
  $("receipt").focus();
}

function nextSale() {
  $("sale-form").reset();
  setSaleError("");
  $("receipt").hidden = true;
  $("sale").hidden = false;
  $("amount").focus();
}

// --- Today's sales --------------------------------------------------------------------------------

async function fetchPeriod(period) {
  const sales = [];
  let cursor = null;
  for (let page = 0; page < REDEMPTIONS_PAGES_MAX; page += 1) {
    const query = new URLSearchParams({ period, limit: String(REDEMPTIONS_PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const path = `/v1/merchants/${encodeURIComponent(session.accountId)}/redemptions?${query}`;
    const { data } = await session.call("GET", path);
    sales.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return sales;
}

async function loadToday() {
  try {
    const periods = await Promise.all(currentPeriods().map(fetchPeriod));
    const byId = new Map(periods.flat().filter((sale) => isToday(sale.occurred_at)).map((sale) => [sale.id, sale]));
    todaySales = [...byId.values()].sort((a, b) => Date.parse(b.occurred_at) - Date.parse(a.occurred_at));
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
  const list = $("today-list");
  list.replaceChildren(...todaySales.map(saleRow));
  if (todaySales.length === 0) {
    list.append(element("li", "empty", t("today.empty")));
  }
}

function saleRow(sale) {
  const time = clockTime(sale.occurred_at);
  const row = element("li", sale.status === "reversed" ? "sale reversed" : "sale");
  row.dataset.id = sale.id;
  const main = element("div", "sale-main");
  main.append(element("span", "sale-time", time), element("span", "sale-amount", `¥${formatNumber(sale.amount)}`));
  const meta = element("div", "sale-meta");
  meta.append(
    element("span", "welfare", `${t("today.welfare")} ${formatNumber(sale.funded.welfare)}`),
    element("span", "bean", `${t("today.bean")} ${formatNumber(sale.funded.bean)}`),
    element("span", "customer", maskId(sale.customer_id)),
  );
  const details = element("div", "sale-details");
  details.append(main, meta);
  row.append(details);
  if (sale.status === "reversed") {
    row.append(element("span", "badge", t("today.reversed")));
  } else {
    const button = element("button", "danger-outline", t("today.reverse"));
    button.type = "button";
    button.setAttribute("aria-label", t("today.reverse.label", { time, amount: sale.amount }));
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
    await session.call("POST", `/v1/redemptions/${encodeURIComponent(sale.id)}/reverse`, {
      idempotencyKey: reverseKeys.get(sale.id),
    });
    reverseKeys.delete(sale.id);
    status.textContent = t("reverse.done", { amount: formatNumber(sale.amount) });
  } catch (error) {
    if (!RETRYABLE_CODES.has(error.code)) reverseKeys.delete(sale.id);
    shell.failed(error, (message) => { status.textContent = message; });
  }
  loadToday();
}

// --- Scanning with the camera (only where the browser can decode QR codes itself) -----------------

let scanning = null; // {stream, timer} while the camera is open

async function canScan() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    return (await BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch {
    return false;
  }
}

async function startScan() {
  const dialog = $("scanner");
  const video = $("scanner-video");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    scanning = { stream, timer: null };
    video.srcObject = stream;
    dialog.showModal();
    await video.play();
    const detector = new BarcodeDetector({ formats: ["qr_code"] });
    scanning.timer = setInterval(() => detectOnce(detector, video), SCAN_INTERVAL_MS);
  } catch {
    stopScan();
    setSaleError(t("scanner.failed"));
  }
}

async function detectOnce(detector, video) {
  if (!scanning || video.readyState < 2) return;
  const codes = await detector.detect(video).catch(() => []);
  const found = codes.map((code) => digitsOf(code.rawValue)).find((digits) => digits.length >= CODE_DIGITS_MIN);
  if (!found) return;
  $("code").value = found;
  stopScan();
  setSaleError("");
  (readAmount() === null ? $("amount") : $("confirm")).focus();
}

function stopScan() {
  if (scanning) {
    clearInterval(scanning.timer);
    scanning.stream.getTracks().forEach((track) => track.stop());
    scanning = null;
  }
  $("scanner-video").srcObject = null;
  if ($("scanner").open) $("scanner").close();
}

// --- Start ----------------------------------------------------------------------------------------

function keepDigits(input) {
  input.addEventListener("input", () => {
    const cleaned = input.id === "code" ? input.value.replace(/[^\d ]/g, "") : digitsOf(input.value);
    if (cleaned !== input.value) input.value = cleaned;
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
      loadToday();
    },
    onSignedOut: () => {
      attempt = null;
      todaySales = [];
      renderToday();
      $("today-status").textContent = "";
    },
  });
  keepDigits($("amount"));
  keepDigits($("code"));
  $("sale-form").addEventListener("submit", takePayment);
  $("next-sale").addEventListener("click", nextSale);
  $("today-refresh").addEventListener("click", loadToday);
  $("scan").addEventListener("click", startScan);
  $("scanner-cancel").addEventListener("click", stopScan);
  $("scanner").addEventListener("cancel", stopScan);
  document.addEventListener("languagechange", () => {
    renderToday();
    setBusy($("confirm").disabled);
  });
  canScan().then((able) => { $("scan").hidden = !able; });
}

async function refreshShopName() {
  try {
    const { data } = await session.call("GET", `/v1/accounts/${encodeURIComponent(session.accountId)}`);
    $("shop-name").textContent = data.display_name;
  } catch (error) {
    shell.failed(error, setSaleError);
  }
}

start();
