// /staff: the console of the people who run a community — reports to verify, accounts, the monthly
// welfare run, printed cards, the fund and settlements, and the month at a glance.
"use strict";

const LIST_LIMIT = 50;
const PEOPLE_PAGE_LIMIT = 500;
const PEOPLE_PAGES_MAX = 20; // 10 000 people of one kind is far beyond a 社区
const FOOD_CATEGORIES = ["grocery", "vegetable", "fruit", "meal"];
const REPORT_CATEGORIES = ["security", "fire", "dispute", "sanitation", "resident_need"];
const REPORT_OUTCOMES = ["submitted", "verified", "dispatched", "closed", "rejected"];
const MERCHANT_CATEGORY_PATTERN = /^[a-z][a-z_]{0,31}$/;
const YUAN_PATTERN = /^(\d{1,10})(?:\.(\d{1,2}))?$/; // whole fen at most: "12.345" is refused
const WHOLE_NUMBER_PATTERN = /^\d{1,9}$/;
const CHART_BAR_HEIGHT = 26;
const CHART_GAP = 12;
const CHART_LABEL_WIDTH = 120;
const CHART_VALUE_WIDTH = 40;
const CHART_WIDTH_MIN = 300;
const CHART_WIDTH_MAX = 720;
const MISSING_ENDPOINT_STATUSES = new Set([404, 405]); // a list this deployment does not offer yet

const session = new Session("jindou.staff");
const $ = (id) => document.getElementById(id);

let shell = null;
let me = null; // GET /v1/me
let community = null; // GET /v1/communities/{id}
let people = {}; // kind → [{id, display_name, status}] of the community, loaded when first needed
const names = new Map(); // account id → display name
let wishesMounted = false; // the wish wall's module keeps itself up to date once mounted
const cursors = {}; // list name → next_cursor
let welfarePlan = null; // {body, key} of the preview on screen
let settlementsShown = new Map(); // id → settlement

// --- Small helpers --------------------------------------------------------------------------------

function communityPath(suffix = "") {
  return `/v1/communities/${encodeURIComponent(community.id)}${suffix}`;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  return search.toString();
}

// Today and this month in the community's own time zone, whatever this computer's clock says.
function localDate(timeZone, date = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

function thisMonth() {
  return localDate(community.timezone).slice(0, 7);
}

function monthAfter(period) {
  const [year, month] = period.split("-").map(Number);
  return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
}

function formatFen(fen) {
  const sign = fen < 0 ? "−" : "";
  const whole = Math.floor(Math.abs(fen) / 100);
  return `${sign}¥${formatNumber(whole)}.${String(Math.abs(fen) % 100).padStart(2, "0")}`;
}

// "1234.5" yuan → 123450 fen, in integers only; a third decimal is a typing mistake, never rounded.
function yuanToFen(text, field) {
  const match = YUAN_PATTERN.exec(text.trim());
  if (!match) throw new InputError(field, t("fund.amount.invalid"));
  const fen = Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
  if (fen <= 0 || !Number.isSafeInteger(fen)) throw new InputError(field, t("fund.amount.invalid"));
  return fen;
}

function wholeNumber(text, field, { min = 1 } = {}) {
  const value = text.trim();
  if (!WHOLE_NUMBER_PATTERN.test(value) || Number(value) < min) throw new InputError(field, t("input.whole_number", { min }));
  return Number(value);
}

function nameOf(accountId) {
  return names.get(accountId) ?? maskId(accountId);
}

function badge(text, kind) {
  return element("span", `badge ${kind}`, text);
}

function button(label, className, onClick) {
  const node = element("button", className, label);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function field(label, input) {
  const id = `field-${input.name.replace(/\W/g, "-")}`;
  input.id = id;
  const caption = element("label", "", label);
  caption.htmlFor = id;
  return [caption, input];
}

function input(name, { value = "", inputmode = null, maxlength = 200, required = false } = {}) {
  const node = element("input");
  node.name = name;
  node.value = value;
  node.maxLength = maxlength;
  node.autocomplete = "off";
  if (inputmode) node.inputMode = inputmode;
  node.required = required;
  return node;
}

function textarea(name, maxlength) {
  const node = element("textarea");
  node.name = name;
  node.maxLength = maxlength;
  node.rows = 3;
  return node;
}

// A list endpoint another part of Jindou serves; on a deployment without it, the console says so.
function missingList(failure) {
  return failure instanceof ApiError && MISSING_ENDPOINT_STATUSES.has(failure.status);
}

async function loadPeople(kind) {
  if (people[kind]) return people[kind];
  const found = [];
  let cursor = null;
  try {
    for (let page = 0; page < PEOPLE_PAGES_MAX; page += 1) {
      const data = await session.call("GET", `/v1/accounts?${query({
        community_id: community.id, kind, limit: String(PEOPLE_PAGE_LIMIT), cursor,
      })}`);
      found.push(...data.items);
      cursor = data.next_cursor;
      if (!cursor) break;
    }
  } catch (failure) {
    if (!missingList(failure)) throw failure;
  }
  for (const person of found) names.set(person.id, person.display_name);
  people[kind] = found;
  return found;
}

// --- Dialogs: every action that changes something is confirmed in one --------------------------

// Opens the action dialog; `submit(form, key)` runs on confirm with one Idempotency-Key per opened
// dialog, so pressing confirm again after a lost answer never acts twice.
function ask({ title, body = "", fields = [], confirm, danger = false, submit }) {
  const dialog = $("action-dialog");
  const form = $("action-form");
  const confirmButton = $("action-confirm");
  $("action-heading").textContent = title;
  $("action-body").textContent = body;
  $("action-fields").replaceChildren(...fields.flat());
  $("action-error").textContent = "";
  clearErrors(form);
  confirmButton.textContent = confirm;
  confirmButton.className = danger ? "danger" : "primary";
  const key = newIdempotencyKey();
  form.onsubmit = async (submitted) => {
    submitted.preventDefault();
    if (confirmButton.disabled) return;
    confirmButton.disabled = true;
    $("action-error").textContent = "";
    try {
      await submit(form, key);
      dialog.close();
    } catch (failure) {
      shell.failed(failure, $("action-error"), form);
    } finally {
      confirmButton.disabled = false;
    }
  };
  dialog.showModal();
  const first = form.querySelector("#action-fields input, #action-fields textarea");
  (first ?? confirmButton).focus();
}

// Shows what must be seen once (a new token) or printed (a sign-in QR).
function showResult({ title, body = "", secret = "", imageUrl = null }) {
  $("result-heading").textContent = title;
  $("result-body").textContent = body;
  $("result-secret").textContent = secret;
  const image = $("result-image");
  image.hidden = !imageUrl;
  image.src = imageUrl ?? "";
  image.alt = imageUrl ? title : "";
  $("result-print").hidden = !imageUrl;
  $("result-dialog").showModal();
}

function closeResult() {
  const image = $("result-image");
  if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  image.removeAttribute("src");
  $("result-secret").textContent = "";
  $("result-dialog").close();
}

// --- Tabs -----------------------------------------------------------------------------------------

const PANELS = {
  dashboard: () => loadDashboard(),
  reports: () => loadReports(),
  accounts: () => loadAccounts(),
  welfare: () => loadPeople("beneficiary"),
  cards: () => loadCards(),
  fund: () => loadSettlements(),
  wishes: () => mountWishes(),
};

function showPanel(name) {
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  // A section shows what is true now (someone else may have verified a report, opened an account).
  if (name === "wishes" && wishesMounted) return;
  people = {};
  Promise.resolve(PANELS[name]()).catch((failure) => shell.failed(failure, $("context-error")));
}

// --- Who is signed in, and for which community -----------------------------------------------------

async function identifyStaff(current) {
  const found = await current.call("GET", "/v1/me");
  if (found.kind !== "staff") throw new Error(t("signin.wrong_kind.holder"));
  current.save({ staff_id: found.staff_id, role: found.role, community_id: found.community_id, kind: "staff" });
  return found;
}

async function start(signedIn) {
  try {
    me = signedIn ?? await session.call("GET", "/v1/me");
    $("staff-role").textContent = t(`role.${me.role}`);
    $("staff-name").textContent = me.display_name ?? "";
    document.body.dataset.role = me.role;
    if (me.community_id) {
      await useCommunity(me.community_id);
    } else {
      await chooseCommunity();
    }
  } catch (failure) {
    shell.failed(failure, $("context-error"));
  }
}

// A deployment-wide admin runs every community: it picks one from the list.
async function chooseCommunity() {
  const choice = $("community-choice");
  const select = $("community-select");
  choice.hidden = false;
  let items = [];
  try {
    items = (await session.call("GET", `/v1/communities?limit=${PEOPLE_PAGE_LIMIT}`)).items;
  } catch (failure) {
    if (!missingList(failure)) throw failure;
    $("context-error").textContent = t("context.no_list");
    return;
  }
  select.replaceChildren(...items.map((item) => {
    const option = element("option", "", item.name);
    option.value = item.id;
    return option;
  }));
  if (items.length === 0) {
    $("context-error").textContent = t("context.none");
    return;
  }
  await useCommunity(items[0].id);
}

async function useCommunity(communityId) {
  community = await session.call("GET", `/v1/communities/${encodeURIComponent(communityId)}`);
  session.communityId = community.id; // for page modules (wishes.js); a deployment admin's stays unsaved
  $("community-name").textContent = community.name;
  people = {};
  wishesMounted = false;
  settlementsShown = new Map();
  const period = thisMonth();
  $("dashboard-period").value = period;
  $("propose-period").value = period;
  $("donation-date").value = localDate(community.timezone);
  const welfarePeriod = $("welfare-period");
  welfarePeriod.replaceChildren(...[period, monthAfter(period)].map((month, index) => {
    const option = element("option", "", t(index === 0 ? "welfare.period.current" : "welfare.period.next", { month }));
    option.value = month;
    return option;
  }));
  const selected = document.querySelector(".tabs [aria-selected=true]");
  showPanel(selected ? selected.id.replace("tab-", "") : "dashboard");
}

// --- Dashboard ------------------------------------------------------------------------------------

async function loadDashboard() {
  const form = $("dashboard-form");
  $("dashboard-error").textContent = "";
  try {
    const period = form.elements.period.value;
    if (!/^\d{4}-\d{2}$/.test(period)) throw new InputError("period", t("input.period"));
    const board = await session.call("GET", communityPath(`/dashboard?${query({ period })}`));
    renderTiles(board);
    renderChart(board.reports.by_category);
    $("dashboard-merchants").replaceChildren(...board.top_merchants.map((merchant) => {
      const row = element("tr");
      row.append(element("td", "", merchant.display_name), element("td", "num", formatNumber(merchant.sales)),
        element("td", "num", formatNumber(merchant.redeemed)));
      return row;
    }));
    if (board.top_merchants.length === 0) {
      const row = element("tr");
      const cell = element("td", "empty", t("dashboard.no_sales"));
      cell.colSpan = 3;
      row.append(cell);
      $("dashboard-merchants").replaceChildren(row);
    }
  } catch (failure) {
    shell.failed(failure, $("dashboard-error"), form);
  }
}

function renderTiles(board) {
  const tiles = [
    ["dashboard.reports_total", board.reports.total, ""],
    ["dashboard.minted", board.beans.minted, "bean"],
    ["dashboard.redeemed", board.beans.redeemed, "bean"],
    ["dashboard.donated", board.beans.donated, "bean"],
    ["dashboard.welfare_issued", board.welfare.issued, "welfare"],
    ["dashboard.welfare_redeemed", board.welfare.redeemed, "welfare"],
    ["dashboard.active", board.active_volunteers, ""],
    ["dashboard.sales", board.sales, ""],
  ];
  $("dashboard-tiles").replaceChildren(...tiles.map(([key, value, kind]) => {
    const tile = element("div", kind);
    tile.append(element("dt", "", t(key)), element("dd", "", formatNumber(value)));
    return tile;
  }));
}

// The chart's <svg> is in the page, so the HTML parser gave it the SVG namespace its parts need.
function svg(tag, attributes, text) {
  const node = document.createElementNS($("dashboard-svg").namespaceURI, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// One bar per category, split by outcome; drawn here (no chart library), scaled to the longest bar.
function renderChart(byCategory) {
  const categories = [...REPORT_CATEGORIES, ...Object.keys(byCategory).filter((c) => !REPORT_CATEGORIES.includes(c))];
  const totals = categories.map((category) => REPORT_OUTCOMES.reduce((sum, outcome) => sum + (byCategory[category]?.[outcome] ?? 0), 0));
  const longest = Math.max(1, ...totals);
  // Drawn at the width it is shown, so its words stay as large as the page's on a phone too.
  const width = Math.min(CHART_WIDTH_MAX, Math.max(CHART_WIDTH_MIN, $("dashboard-chart").clientWidth));
  const barSpace = width - CHART_LABEL_WIDTH - CHART_VALUE_WIDTH;
  const height = categories.length * (CHART_BAR_HEIGHT + CHART_GAP);
  const chart = $("dashboard-svg");
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren();
  categories.forEach((category, index) => {
    const y = index * (CHART_BAR_HEIGHT + CHART_GAP);
    const label = hasMessage(`category.${category}`) ? t(`category.${category}`) : category;
    chart.append(svg("text", { x: 0, y: y + CHART_BAR_HEIGHT * 0.7, class: "chart-label" }, label));
    let x = CHART_LABEL_WIDTH;
    for (const outcome of REPORT_OUTCOMES) {
      const count = byCategory[category]?.[outcome] ?? 0;
      if (count === 0) continue;
      const width = (count / longest) * barSpace;
      const bar = svg("rect", { x, y, width, height: CHART_BAR_HEIGHT, rx: 3, class: `bar status-${outcome}` });
      bar.append(svg("title", {}, `${label} · ${t(`status.${outcome}`)}: ${count}`));
      chart.append(bar);
      x += width;
    }
    chart.append(svg("text", { x: x + 6, y: y + CHART_BAR_HEIGHT * 0.7, class: "chart-value" }, formatNumber(totals[index])));
  });
  $("dashboard-chart").setAttribute("aria-label", categories.map((category, index) =>
    `${hasMessage(`category.${category}`) ? t(`category.${category}`) : category} ${totals[index]}`).join("，"));
  $("dashboard-legend").replaceChildren(...REPORT_OUTCOMES.map((outcome) => {
    const item = element("li");
    item.append(element("span", `swatch status-${outcome}`), element("span", "", t(`status.${outcome}`)));
    return item;
  }));
}

// --- Reports --------------------------------------------------------------------------------------

async function loadReports({ more = false } = {}) {
  const form = $("reports-filter");
  const list = $("reports-list");
  $("reports-error").textContent = "";
  try {
    await loadPeople("volunteer");
    const data = await session.call("GET", `/v1/reports?${query({
      community_id: community.id, status: form.elements.status.value, category: form.elements.category.value,
      limit: String(LIST_LIMIT), cursor: more ? cursors.reports : null,
    })}`);
    cursors.reports = data.next_cursor;
    const rows = data.items.map(reportRow);
    if (more) list.append(...rows);
    else list.replaceChildren(...rows);
    if (list.children.length === 0) list.append(element("li", "empty", t("reports.empty")));
    $("reports-more").hidden = !data.next_cursor;
  } catch (failure) {
    if (missingList(failure)) $("reports-error").textContent = t("list.missing");
    else shell.failed(failure, $("reports-error"), form);
  }
}

function reportRow(report) {
  const row = element("li", "row");
  row.dataset.id = report.id;
  const head = element("div", "row-head");
  const category = hasMessage(`category.${report.category}`) ? t(`category.${report.category}`) : report.category;
  head.append(element("strong", "", category), element("span", "muted", nameOf(report.reporter_id)),
    element("span", "muted", report.submitted_at ? `${localParts(report.submitted_at)?.date ?? ""} ${clockTime(report.submitted_at)}` : ""),
    badge(t(`status.${report.status}`), `status status-${report.status}`));
  row.append(head, element("p", "row-text", report.description));
  const facts = [];
  if (report.award !== null && report.award !== undefined) facts.push(t("reports.award", { award: report.award }));
  if (report.handler_ids?.length) facts.push(t("reports.handlers", { names: report.handler_ids.map(nameOf).join("、") }));
  if (facts.length) row.append(element("p", "muted", facts.join(" · ")));
  const actions = element("div", "row-actions writes");
  if ((report.award === null || report.award === undefined) && report.status !== "rejected") {
    actions.append(button(t("reports.verify"), "secondary", () => verifyReport(report)));
  }
  if (report.status === "submitted" || report.status === "verified") {
    actions.append(button(t("reports.dispatch"), "secondary", () => dispatchReport(report)));
  }
  if (report.status === "dispatched") actions.append(button(t("reports.close"), "secondary", () => closeReport(report)));
  if (report.status === "submitted") actions.append(button(t("reports.reject"), "danger-outline", () => rejectReport(report)));
  if (actions.children.length) row.append(actions);
  return row;
}

function reportPath(report, action) {
  return `/v1/reports/${encodeURIComponent(report.id)}/${action}`;
}

function reportDone(message) {
  $("reports-notice").textContent = message;
  loadReports();
}

function verifyReport(report) {
  const award = input("award", { value: String(community.award_schedule?.[report.category] ?? ""), inputmode: "numeric", maxlength: 6 });
  ask({
    title: t("reports.verify.title"),
    body: `${t(`category.${report.category}`)} · ${nameOf(report.reporter_id)}：${report.description}`,
    fields: [field(t("reports.award.label"), award)],
    confirm: t("reports.verify.confirm"),
    submit: async (form, key) => {
      const beans = wholeNumber(award.value, "award", { min: 0 });
      const done = await session.call("POST", reportPath(report, "verify"), { award: beans }, { idempotencyKey: key });
      reportDone(t("reports.verified", { award: done.award, name: nameOf(report.reporter_id) }));
    },
  });
}

function rejectReport(report) {
  const reason = textarea("reason", 500);
  ask({
    title: t("reports.reject.title"),
    body: `${t(`category.${report.category}`)} · ${nameOf(report.reporter_id)}：${report.description}`,
    fields: [field(t("reports.reason"), reason)],
    confirm: t("reports.reject.confirm"),
    danger: true,
    submit: async (form, key) => {
      if (!reason.value.trim()) throw new InputError("reason", t("reports.reason.missing"));
      await session.call("POST", reportPath(report, "reject"), { reason: reason.value.trim() }, { idempotencyKey: key });
      reportDone(t("reports.rejected"));
    },
  });
}

function dispatchReport(report) {
  const search = input("search", { maxlength: 100 });
  search.type = "search";
  search.placeholder = t("reports.handlers.search");
  const list = element("ul", "checklist");
  list.dataset.field = "handler_ids";
  const volunteers = (people.volunteer ?? []).filter((person) => person.status === "active" && person.id !== report.reporter_id);
  for (const person of volunteers) {
    const item = element("li");
    const caption = element("label", "check");
    const box = element("input");
    box.type = "checkbox";
    box.name = "handler";
    box.value = person.id;
    caption.append(box, element("span", "", person.display_name));
    item.append(caption);
    list.append(item);
  }
  if (volunteers.length === 0) list.append(element("li", "empty", t("reports.handlers.none")));
  search.addEventListener("input", () => {
    const wanted = search.value.trim().toLowerCase();
    for (const item of list.children) item.hidden = wanted !== "" && !item.textContent.toLowerCase().includes(wanted);
  });
  ask({
    title: t("reports.dispatch.title"),
    body: `${t(`category.${report.category}`)}：${report.description}`,
    fields: [field(t("reports.handlers.pick"), search), [list]],
    confirm: t("reports.dispatch.confirm"),
    submit: async (form, key) => {
      const handlerIds = [...list.querySelectorAll("input:checked")].map((box) => box.value);
      if (handlerIds.length === 0) throw new InputError("handler_ids", t("reports.handlers.missing"));
      await session.call("POST", reportPath(report, "dispatch"), { handler_ids: handlerIds }, { idempotencyKey: key });
      reportDone(t("reports.dispatched", { names: handlerIds.map(nameOf).join("、") }));
    },
  });
}

function closeReport(report) {
  const suggested = String(community.award_schedule?.[report.category] ?? 0);
  const awards = report.handler_ids.map((handlerId) => {
    const box = input(`handler_awards.${handlerId}`, { value: suggested, inputmode: "numeric", maxlength: 6 });
    return { handlerId, box };
  });
  ask({
    title: t("reports.close.title"),
    body: `${t(`category.${report.category}`)}：${report.description}`,
    fields: awards.map(({ handlerId, box }) => field(t("reports.close.award", { name: nameOf(handlerId) }), box)),
    confirm: t("reports.close.confirm"),
    submit: async (form, key) => {
      const handlerAwards = {};
      for (const { handlerId, box } of awards) {
        const beans = wholeNumber(box.value, box.name, { min: 0 });
        if (beans > 0) handlerAwards[handlerId] = beans; // 0: this handler is thanked, not paid
      }
      await session.call("POST", reportPath(report, "close"), { handler_awards: handlerAwards }, { idempotencyKey: key });
      reportDone(t("reports.closed"));
    },
  });
}

// --- Accounts -------------------------------------------------------------------------------------

async function loadAccounts({ more = false } = {}) {
  const form = $("accounts-filter");
  const list = $("accounts-list");
  $("accounts-error").textContent = "";
  try {
    const data = await session.call("GET", `/v1/accounts?${query({
      community_id: community.id, kind: form.elements.kind.value, q: form.elements.q.value.trim(),
      limit: String(LIST_LIMIT), cursor: more ? cursors.accounts : null,
    })}`);
    cursors.accounts = data.next_cursor;
    for (const account of data.items) names.set(account.id, account.display_name);
    const rows = data.items.map(accountRow);
    if (more) list.append(...rows);
    else list.replaceChildren(...rows);
    if (list.children.length === 0) list.append(element("li", "empty", t("accounts.empty")));
    $("accounts-more").hidden = !data.next_cursor;
  } catch (failure) {
    if (missingList(failure)) $("accounts-error").textContent = t("list.missing");
    else shell.failed(failure, $("accounts-error"), form);
  }
}

function accountRow(account) {
  const row = element("li", "row");
  row.dataset.id = account.id;
  const head = element("div", "row-head");
  head.append(element("strong", "", account.display_name), badge(t(`kind.${account.kind}`), "kind"),
    badge(t(`account.${account.status}`), `account-${account.status}`));
  const balances = account.balances ?? { bean: 0, welfare: 0 };
  const facts = element("p", "muted");
  facts.append(element("span", "bean", `${t("balance.bean")} ${formatNumber(balances.bean)}`), " · ",
    element("span", "welfare", `${t("balance.welfare")} ${formatNumber(balances.welfare)}`), " · ",
    element("span", "mono", account.id));
  row.append(head, facts);
  const actions = element("div", "row-actions writes");
  if (account.status === "frozen") actions.append(button(t("accounts.unfreeze"), "secondary", () => setFrozen(account, false)));
  else actions.append(button(t("accounts.freeze"), "danger-outline", () => setFrozen(account, true)));
  actions.append(button(t("accounts.reissue"), "danger-outline", () => reissueToken(account)),
    button(t("accounts.sign_in_qr"), "secondary", () => printSignInQr(account)));
  row.append(actions);
  return row;
}

function accountPath(account, action) {
  return `/v1/accounts/${encodeURIComponent(account.id)}/${action}`;
}

function accountDone(message) {
  $("accounts-notice").textContent = message;
  loadAccounts();
}

function setFrozen(account, frozen) {
  const reason = textarea("reason", 500);
  ask({
    title: t(frozen ? "accounts.freeze.title" : "accounts.unfreeze.title", { name: account.display_name }),
    body: t(frozen ? "accounts.freeze.body" : "accounts.unfreeze.body"),
    fields: [field(t("accounts.reason"), reason)],
    confirm: t(frozen ? "accounts.freeze.confirm" : "accounts.unfreeze.confirm"),
    danger: frozen,
    submit: async (form, key) => {
      const text = reason.value.trim();
      if (frozen && !text) throw new InputError("reason", t("accounts.reason.missing"));
      await session.call("POST", accountPath(account, frozen ? "freeze" : "unfreeze"), text ? { reason: text } : {},
        { idempotencyKey: key });
      accountDone(t(frozen ? "accounts.frozen" : "accounts.unfrozen", { name: account.display_name }));
    },
  });
}

function reissueToken(account) {
  ask({
    title: t("accounts.reissue.title", { name: account.display_name }),
    body: t("accounts.reissue.body"),
    confirm: t("accounts.reissue.confirm"),
    danger: true,
    submit: async (form, key) => {
      const issued = await session.call("POST", accountPath(account, "token"), undefined, { idempotencyKey: key });
      showResult({ title: t("accounts.token.title", { name: account.display_name }),
        body: t("accounts.token.body", { id: account.id }), secret: issued.token });
    },
  });
}

// A fresh sign-in code as a QR image to print or show; the holder scans it and is signed in.
async function printSignInQr(account) {
  $("accounts-error").textContent = "";
  try {
    const code = await session.call("POST", accountPath(account, "sign-in-codes"));
    const image = await session.call("GET", accountPath(account, `sign-in-codes/${encodeURIComponent(code.code)}.png`),
      undefined, { accept: "image/png" });
    showResult({
      title: t("accounts.qr.title", { name: account.display_name }),
      body: t("accounts.qr.body", { expires: `${localParts(code.expires_at)?.date ?? ""} ${clockTime(code.expires_at)}` }),
      secret: code.code.replace(/(\d{4})(?=\d)/g, "$1 "),
      imageUrl: URL.createObjectURL(image),
    });
  } catch (failure) {
    if (missingList(failure)) $("accounts-error").textContent = t("accounts.qr.missing");
    else shell.failed(failure, $("accounts-error"));
  }
}

function merchantCategories(form) {
  const food = [...form.querySelectorAll("input[name=food]:checked")].map((box) => box.value);
  const others = form.elements.other_categories.value.split(/[,，\s]+/).map((word) => word.trim().toLowerCase()).filter(Boolean);
  const wrong = others.find((word) => !MERCHANT_CATEGORY_PATTERN.test(word));
  if (wrong) throw new InputError("other_categories", t("accounts.categories.invalid", { word: wrong }));
  const all = [...new Set([...food, ...others])];
  if (all.length === 0) throw new InputError("merchant_categories", t("accounts.categories.missing"));
  return all;
}

async function openAccount(submitted) {
  submitted.preventDefault();
  const form = $("open-form");
  const submit = form.querySelector("button[type=submit]");
  if (submit.disabled) return;
  $("open-error").textContent = "";
  clearErrors(form);
  submit.disabled = true;
  try {
    const kind = form.elements.kind.value;
    const displayName = form.elements.display_name.value.trim();
    if (!displayName) throw new InputError("display_name", t("accounts.name.missing"));
    const body = { community_id: community.id, kind, display_name: displayName };
    if (kind === "merchant") body.merchant_categories = merchantCategories(form);
    const opened = await session.call("POST", "/v1/accounts", body);
    names.set(opened.id, opened.display_name);
    delete people[kind];
    form.reset();
    $("open-categories").hidden = true;
    showResult({ title: t("accounts.opened.title", { name: opened.display_name }),
      body: t("accounts.token.body", { id: opened.id }), secret: opened.token });
    $("accounts-filter").elements.q.value = opened.display_name;
    accountDone(t("accounts.opened", { name: opened.display_name }));
  } catch (failure) {
    shell.failed(failure, $("open-error"), form);
  } finally {
    submit.disabled = false;
  }
}

// --- Welfare run ----------------------------------------------------------------------------------

async function previewWelfare(submitted) {
  submitted.preventDefault();
  const form = $("welfare-form");
  $("welfare-error").textContent = "";
  $("welfare-notice").textContent = "";
  $("welfare-preview").hidden = true;
  clearErrors(form);
  try {
    const body = {
      community_id: community.id, period: form.elements.period.value,
      amount_per_beneficiary: wholeNumber(form.elements.amount_per_beneficiary.value, "amount_per_beneficiary"),
    };
    await loadPeople("beneficiary");
    const preview = await session.call("POST", "/v1/welfare/allowances/preview", body);
    welfarePlan = { body, key: newIdempotencyKey() };
    const lines = [
      ...preview.issued.map((line) => [line, "welfare.outcome.issue"]),
      ...preview.skipped.map((line) => [line, "welfare.outcome.skip"]),
    ];
    $("welfare-lines").replaceChildren(...lines.map(([line, outcome]) => {
      const row = element("tr", outcome === "welfare.outcome.skip" ? "skipped" : "");
      row.append(element("td", "", nameOf(line.account_id)), element("td", "num", formatNumber(line.amount)),
        element("td", "", t(outcome)));
      return row;
    }));
    $("welfare-summary").textContent = t("welfare.summary", {
      count: preview.issued.length, total: formatNumber(preview.total), skipped: preview.skipped.length, period: body.period,
    });
    $("welfare-run").hidden = preview.issued.length === 0;
    $("welfare-preview").hidden = false;
  } catch (failure) {
    shell.failed(failure, $("welfare-error"), form);
  }
}

function runWelfare() {
  if (!welfarePlan) return;
  const plan = welfarePlan;
  ask({
    title: t("welfare.run.title"),
    body: $("welfare-summary").textContent,
    confirm: t("welfare.run.confirm"),
    submit: async () => {
      const run = await session.call("POST", "/v1/welfare/allowances", plan.body, { idempotencyKey: plan.key });
      welfarePlan = null;
      $("welfare-preview").hidden = true;
      $("welfare-notice").textContent = t("welfare.done", {
        count: run.issued.length, total: formatNumber(run.total), skipped: run.skipped.length, period: run.period,
      });
    },
  });
}

// --- Cards ----------------------------------------------------------------------------------------

async function loadCards() {
  const list = $("cards-list");
  $("cards-error").textContent = "";
  const beneficiaries = await loadPeople("beneficiary");
  list.replaceChildren(...beneficiaries.filter((person) => person.status === "active").map((person) => {
    const item = element("li");
    const caption = element("label", "check");
    const box = element("input");
    box.type = "checkbox";
    box.name = "account";
    box.value = person.id;
    caption.append(box, element("span", "", person.display_name));
    item.append(caption);
    return item;
  }));
  if (list.children.length === 0) list.append(element("li", "empty", t("cards.none")));
}

async function downloadCards(submitted) {
  submitted.preventDefault();
  const form = $("cards-form");
  const submit = form.querySelector("button[type=submit]");
  $("cards-error").textContent = "";
  $("cards-notice").textContent = "";
  clearErrors(form);
  const ids = [...form.querySelectorAll("input[name=account]:checked")].map((box) => box.value);
  if (ids.length === 0) {
    showError(new InputError("account_ids", t("cards.missing")), { form });
    return;
  }
  submit.disabled = true;
  try {
    const { data, response } = await session.request("GET", communityPath(`/cards.pdf?${query({ account_ids: ids.join(",") })}`),
      { accept: "application/pdf" });
    const link = $("cards-link");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(data);
    link.hidden = false;
    link.click();
    $("cards-notice").textContent = t("cards.done", {
      count: ids.length, issued: Number(response.headers.get("Jindou-Cards-Issued") || 0),
    });
  } catch (failure) {
    if (missingList(failure)) $("cards-error").textContent = t("cards.unavailable");
    else shell.failed(failure, $("cards-error"), form);
  } finally {
    submit.disabled = false;
  }
}

// --- Fund and settlements -------------------------------------------------------------------------

async function recordDonation(submitted) {
  submitted.preventDefault();
  const form = $("donation-form");
  const submit = form.querySelector("button[type=submit]");
  if (submit.disabled) return;
  $("donation-error").textContent = "";
  $("donation-notice").textContent = "";
  clearErrors(form);
  submit.disabled = true;
  try {
    const donor = form.elements.donor.value.trim();
    if (!donor) throw new InputError("donor", t("fund.donor.missing"));
    const amountFen = yuanToFen(form.elements.amount_fen.value, "amount_fen");
    const body = {
      community_id: community.id, donor, amount_fen: amountFen,
      received_on: form.elements.received_on.value, reference: form.elements.reference.value.trim(),
    };
    // One key per filled-in form: pressing again after a lost answer records the donation once.
    if (!form.dataset.key || form.dataset.body !== JSON.stringify(body)) {
      form.dataset.key = newIdempotencyKey();
      form.dataset.body = JSON.stringify(body);
    }
    await session.call("POST", "/v1/fund/donations", body, { idempotencyKey: form.dataset.key });
    form.reset();
    delete form.dataset.key;
    $("donation-date").value = localDate(community.timezone);
    $("donation-notice").textContent = t("fund.recorded", { amount: formatFen(amountFen), donor });
  } catch (failure) {
    shell.failed(failure, $("donation-error"), form);
  } finally {
    submit.disabled = false;
  }
}

async function loadSettlements() {
  $("settlement-error").textContent = "";
  await loadPeople("merchant");
  try {
    const data = await session.call("GET", `/v1/settlements?${query({ community_id: community.id, limit: String(LIST_LIMIT) })}`);
    for (const settlement of data.items) settlementsShown.set(settlement.id, settlement);
  } catch (failure) {
    if (!missingList(failure)) throw failure;
    $("settlement-error").textContent = t("settlement.list_missing");
  }
  renderSettlements();
}

function renderSettlements() {
  const list = $("settlements-list");
  const settlements = [...settlementsShown.values()].sort((a, b) => (a.period < b.period ? 1 : a.period > b.period ? -1 : 0));
  list.replaceChildren(...settlements.map(settlementRow));
  if (settlements.length === 0) list.append(element("li", "empty", t("settlement.none")));
}

function settlementRow(settlement) {
  const row = element("li", "row settlement");
  row.dataset.id = settlement.id;
  const head = element("div", "row-head");
  head.append(element("strong", "", t("settlement.of", { period: settlement.period })),
    badge(t(`settlement.status.${settlement.status}`), `settlement-${settlement.status}`),
    element("span", "total", formatFen(settlement.total_fen)));
  const table = element("table", "table");
  const header = element("tr");
  for (const key of ["column.merchant", "column.redeemed", "column.reimbursement", "column.rebate", "column.total"]) {
    header.append(element("th", "", t(key)));
  }
  const thead = element("thead");
  thead.append(header);
  const tbody = element("tbody");
  for (const line of settlement.lines) {
    const cells = element("tr");
    cells.append(element("td", "", nameOf(line.merchant_id)), element("td", "num", formatNumber(line.redeemed)),
      element("td", "num", formatFen(line.reimbursement_fen)), element("td", "num", formatFen(line.rebate_fen)),
      element("td", "num", formatFen(line.total_fen)));
    tbody.append(cells);
  }
  table.append(thead, tbody);
  row.append(head, table);
  const actions = element("div", "row-actions writes");
  const proposedByMe = settlement.proposed_by === `${session.role}:${session.staffId}`;
  if (settlement.status === "proposed") {
    if (proposedByMe) {
      row.append(element("p", "notice-warn", t("settlement.own_proposal")));
    } else if (session.role === "admin") {
      actions.append(button(t("settlement.approve"), "primary-inline", () => approveSettlement(settlement)));
    } else {
      row.append(element("p", "muted", t("settlement.needs_admin")));
    }
  }
  if (settlement.status === "approved") actions.append(button(t("settlement.pay"), "danger", () => paySettlement(settlement)));
  if (settlement.status === "paid") {
    const link = element("a", "report-link", t("settlement.report"));
    link.href = `/v1/public/communities/${encodeURIComponent(settlement.community_id)}/fund-reports/${thisMonth()}.html`;
    link.target = "_blank";
    link.rel = "noopener";
    actions.append(link);
    if (settlement.bank_reference) row.append(element("p", "muted", t("settlement.paid_with", { reference: settlement.bank_reference })));
  }
  if (actions.children.length) row.append(actions);
  return row;
}

function settlementDone(settlement, message) {
  settlementsShown.set(settlement.id, settlement);
  renderSettlements();
  $("settlement-notice").textContent = message;
}

async function proposeSettlement(submitted) {
  submitted.preventDefault();
  const form = $("propose-form");
  const submit = form.querySelector("button[type=submit]");
  if (submit.disabled) return;
  $("settlement-error").textContent = "";
  $("settlement-notice").textContent = "";
  clearErrors(form);
  submit.disabled = true;
  try {
    const period = form.elements.period.value;
    if (!/^\d{4}-\d{2}$/.test(period)) throw new InputError("period", t("input.period"));
    await loadPeople("merchant");
    const proposed = await session.call("POST", "/v1/settlements", { community_id: community.id, period });
    settlementDone(proposed, t("settlement.done.proposed", { period, total: formatFen(proposed.total_fen) }));
  } catch (failure) {
    shell.failed(failure, $("settlement-error"), form);
  } finally {
    submit.disabled = false;
  }
}

function approveSettlement(settlement) {
  ask({
    title: t("settlement.approve.title", { period: settlement.period }),
    body: t("settlement.approve.body", { total: formatFen(settlement.total_fen), count: settlement.lines.length }),
    confirm: t("settlement.approve.confirm"),
    danger: true,
    submit: async (form, key) => {
      const approved = await session.call("POST", `/v1/settlements/${encodeURIComponent(settlement.id)}/approve`, undefined,
        { idempotencyKey: key });
      settlementDone(approved, t("settlement.done.approved", { period: settlement.period }));
    },
  });
}

function paySettlement(settlement) {
  const reference = input("bank_reference", { maxlength: 200 });
  ask({
    title: t("settlement.pay.title", { period: settlement.period }),
    body: t("settlement.pay.body", { total: formatFen(settlement.total_fen) }),
    fields: [field(t("settlement.bank_reference"), reference)],
    confirm: t("settlement.pay.confirm"),
    danger: true,
    submit: async (form, key) => {
      if (!reference.value.trim()) throw new InputError("bank_reference", t("settlement.bank_reference.missing"));
      const paid = await session.call("POST", `/v1/settlements/${encodeURIComponent(settlement.id)}/pay`,
        { bank_reference: reference.value.trim() }, { idempotencyKey: key });
      settlementDone(paid, t("settlement.done.paid", { period: settlement.period }));
    },
  });
}

// --- The wish wall (a module another part of Jindou may ship) -------------------------------------

function mountWishes() {
  const mount = window.JindouWishes?.mountStaff;
  $("wishes-missing").hidden = Boolean(mount);
  if (!mount) return;
  wishesMounted = true;
  mount($("staff-wishes"), session);
}

// --- Start ----------------------------------------------------------------------------------------

function wire() {
  const tabs = [...document.querySelectorAll(".tabs [role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => showPanel(tab.id.replace("tab-", "")));
    // The tab list's keyboard: arrows move between sections, Home and End to the first and last.
    tab.addEventListener("keydown", (pressed) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -tabs.length, End: tabs.length };
      if (!(pressed.key in moves)) return;
      pressed.preventDefault();
      const index = Math.min(tabs.length - 1, Math.max(0, tabs.indexOf(tab) + moves[pressed.key]));
      tabs[index].focus();
      showPanel(tabs[index].id.replace("tab-", ""));
    });
  }
  $("dashboard-form").addEventListener("submit", (submitted) => { submitted.preventDefault(); loadDashboard(); });
  $("reports-filter").addEventListener("submit", (submitted) => { submitted.preventDefault(); loadReports(); });
  $("reports-filter").addEventListener("change", () => loadReports());
  $("reports-more").addEventListener("click", () => loadReports({ more: true }));
  $("accounts-filter").addEventListener("submit", (submitted) => { submitted.preventDefault(); loadAccounts(); });
  $("accounts-more").addEventListener("click", () => loadAccounts({ more: true }));
  $("open-form").addEventListener("submit", openAccount);
  $("open-kind").addEventListener("change", () => { $("open-categories").hidden = $("open-kind").value !== "merchant"; });
  $("welfare-form").addEventListener("submit", previewWelfare);
  $("welfare-form").addEventListener("input", () => { $("welfare-preview").hidden = true; welfarePlan = null; });
  $("welfare-run").addEventListener("click", runWelfare);
  $("cards-form").addEventListener("submit", downloadCards);
  $("donation-form").addEventListener("submit", recordDonation);
  $("propose-form").addEventListener("submit", proposeSettlement);
  $("action-cancel").addEventListener("click", () => $("action-dialog").close());
  $("result-close").addEventListener("click", closeResult);
  $("result-dialog").addEventListener("cancel", closeResult);
  $("result-print").addEventListener("click", () => window.print());
  $("community-select").addEventListener("change", () => useCommunity($("community-select").value));
  document.addEventListener("languagechange", () => {
    if (!community) return;
    $("staff-role").textContent = t(`role.${me.role}`);
    useCommunity(community.id);
  });
}

function begin() {
  wire();
  shell = setUpShell({
    session,
    identify: identifyStaff,
    onSignedIn: (found) => start(found),
    onSignedOut: () => {
      me = null;
      community = null;
      people = {};
      names.clear();
      wishesMounted = false;
      settlementsShown = new Map();
      $("community-choice").hidden = true;
      delete document.body.dataset.role;
    },
  });
}

begin();
