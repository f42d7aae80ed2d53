// The wish wall (微心愿), mounted by the wallet and the staff console when this file is present:
//   JindouWishes.mountWallet(element, session)  open wishes, progress bars, a pledge form (volunteers)
//   JindouWishes.mountStaff(element, session)   create; fulfil choosing the merchant; cancel, confirmed
// `session` is the page's signed-in person: {token, community_id, kind/role, call(method, path, body)}
// where call() resolves to the parsed JSON or throws the API's error ({code, message, details}).
// Words are Simplified Chinese first; the page's language switch re-renders them.
"use strict";

(() => {
  const TITLE_LENGTH_MAX = 100;
  const STORY_LENGTH_MAX = 2000;
  const TARGET_BEANS_MAX = 5000;
  const PLEDGE_BEANS_SUGGESTED = 10;
  const PAGE_LIMIT = 50;
  const STATUSES = ["open", "funded", "fulfilled", "cancelled"];

  const TEXT = {
    zh: {
      "wall.heading": "微心愿",
      "wall.lead": "居民的小心愿，用您的金豆一起帮他们实现。金豆先存入心愿的专户，凑齐后由商户送达；心愿取消时原数退回。",
      "wall.empty": "现在没有待认领的心愿。",
      "wall.more": "更多",
      "wish.figures": "已认领 {pledged} / {target} 金豆 · {pledgers} 人",
      "wish.still_needed": "还差 {beans} 金豆",
      "pledge.amount": "认领金豆数",
      "pledge.submit": "认领",
      "pledge.sending": "正在认领…",
      "pledge.done": "认领成功：{amount} 金豆已存入心愿专户。",
      "pledge.invalid_amount": "请填写 1 至 {max} 的整数。",
      "status.open": "认领中",
      "status.funded": "已凑齐",
      "status.fulfilled": "已实现",
      "status.cancelled": "已取消",
      "staff.heading": "心愿墙",
      "staff.create": "新建心愿",
      "staff.title": "心愿标题",
      "staff.story": "心愿故事",
      "staff.target": "所需金豆",
      "staff.beneficiary": "受助居民账户编号（可不填）",
      "staff.merchant": "提供商户",
      "staff.merchant.later": "暂不指定（实现时再选）",
      "staff.merchant.chosen": "创建时指定的商户",
      "staff.merchant.id": "商户账户编号",
      "staff.submit": "发布心愿",
      "staff.created": "心愿已发布。",
      "staff.filter": "状态",
      "staff.filter.all": "全部",
      "staff.fulfil": "实现心愿",
      "staff.fulfilled": "心愿已实现，金豆已转给商户，月度结算时兑付。",
      "staff.cancel": "取消心愿",
      "staff.cancel.confirm": "确定取消？已认领的金豆将原数退回每位认领人。",
      "staff.cancel.yes": "确定取消",
      "staff.cancel.no": "返回",
      "staff.cancelled": "心愿已取消，金豆已退回。",
      "staff.empty": "还没有心愿。",
      "error.over_pledged": "超过了心愿还差的金豆数，请少认领一些。",
      "error.insufficient_funds": "您的金豆不够。",
      "error.invalid_state": "这个心愿现在不能这样操作（可能已凑齐、已实现或已取消）。",
      "error.account_frozen": "账户已冻结，暂时不能认领。",
      "error.validation_error": "填写有误，请检查。",
      "error.forbidden": "没有权限。",
      "error.not_found": "找不到这个心愿。",
      "error.unauthorized": "登录已失效，请重新登录。",
      "error.network": "网络异常，请稍后再试。",
      "error.unknown": "出错了（{code}），请再试一次。",
    },
    en: {
      "wall.heading": "Wish wall",
      "wall.lead": "Residents' small wishes: fund them together with your beans. Beans wait in the wish's own account until a merchant delivers it, and come back if it is cancelled.",
      "wall.empty": "No wish is waiting for pledges now.",
      "wall.more": "More",
      "wish.figures": "{pledged} of {target} beans · {pledgers} pledgers",
      "wish.still_needed": "{beans} beans to go",
      "pledge.amount": "Beans to pledge",
      "pledge.submit": "Pledge",
      "pledge.sending": "Pledging…",
      "pledge.done": "Pledged: {amount} beans are in the wish's account.",
      "pledge.invalid_amount": "Enter a whole number from 1 to {max}.",
      "status.open": "Open",
      "status.funded": "Funded",
      "status.fulfilled": "Fulfilled",
      "status.cancelled": "Cancelled",
      "staff.heading": "Wish wall",
      "staff.create": "New wish",
      "staff.title": "Title",
      "staff.story": "Story",
      "staff.target": "Beans needed",
      "staff.beneficiary": "Resident's account ID (optional)",
      "staff.merchant": "Supplying merchant",
      "staff.merchant.later": "Not yet (choose when fulfilling)",
      "staff.merchant.chosen": "The merchant chosen at creation",
      "staff.merchant.id": "Merchant account ID",
      "staff.submit": "Post the wish",
      "staff.created": "The wish is posted.",
      "staff.filter": "Status",
      "staff.filter.all": "All",
      "staff.fulfil": "Fulfil",
      "staff.fulfilled": "Fulfilled: the beans went to the merchant, repaid at the month's settlement.",
      "staff.cancel": "Cancel the wish",
      "staff.cancel.confirm": "Cancel it? Every pledged bean goes back to its pledger.",
      "staff.cancel.yes": "Yes, cancel",
      "staff.cancel.no": "Back",
      "staff.cancelled": "Cancelled: the beans went back.",
      "staff.empty": "No wishes yet.",
      "error.over_pledged": "That is more than the wish still needs; pledge less.",
      "error.insufficient_funds": "You do not have enough beans.",
      "error.invalid_state": "Not possible for this wish now (it may be funded, fulfilled or cancelled).",
      "error.account_frozen": "This account is frozen and cannot pledge for now.",
      "error.validation_error": "Something in the form is wrong; please check it.",
      "error.forbidden": "Not allowed.",
      "error.not_found": "No such wish.",
      "error.unauthorized": "Your sign-in has expired; please sign in again.",
      "error.network": "Network problem; please try again.",
      "error.unknown": "Something went wrong ({code}); please try again.",
    },
  };

  function language() {
    if (typeof window.currentLanguage === "function") return window.currentLanguage() === "en" ? "en" : "zh";
    return (document.documentElement.lang || "zh").toLowerCase().startsWith("en") ? "en" : "zh";
  }

  function say(key, values = {}) {
    const text = TEXT[language()][key] ?? TEXT.zh[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  function errorText(error) {
    const code = error && error.code ? String(error.code) : "unknown";
    return `error.${code}` in TEXT.zh ? say(`error.${code}`) : say("error.unknown", { code });
  }

  // The field an error names (a 422 says which), so its message can sit beside that field.
  function errorField(error) {
    return (error && (error.details?.field ?? error.field)) || null;
  }

  function node(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  // A page may mount again on the same element (after signing in anew): one language listener each.
  const languageListeners = new WeakMap();

  function onLanguageChange(element, refresh) {
    const previous = languageListeners.get(element);
    if (previous) document.removeEventListener("languagechange", previous);
    languageListeners.set(element, refresh);
    document.addEventListener("languagechange", refresh);
  }

  function withStyles() {
    if (document.querySelector("link[data-jindou-wishes]")) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/wishes.css";
    link.dataset.jindouWishes = "";
    document.head.appendChild(link);
  }

  function communityOf(session) {
    return session.community_id ?? session.communityId ?? null;
  }

  function listPath(session, status, cursor) {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    const community = communityOf(session);
    if (community) query.set("community_id", community);
    if (status) query.set("status", status);
    if (cursor) query.set("cursor", cursor);
    return `/v1/wishes?${query}`;
  }

  function wishPath(wish, action) {
    return `/v1/wishes/${encodeURIComponent(wish.id)}/${action}`;
  }

  function formatNumber(value) {
    return Number(value).toLocaleString(language() === "zh" ? "zh-CN" : "en-US");
  }

  // Title, status, figures and a progress bar: what both mounts show of every wish.
  function wishCard(wish) {
    const card = node("li", `jd-wish jd-wish-${wish.status}`);
    card.dataset.wishId = wish.id;
    const head = node("div", "jd-wish-head");
    head.append(node("h3", "jd-wish-title", wish.title), node("span", `jd-wish-status jd-${wish.status}`, say(`status.${wish.status}`)));
    const figures = say("wish.figures", {
      pledged: formatNumber(wish.pledged), target: formatNumber(wish.target), pledgers: formatNumber(wish.pledgers),
    });
    const bar = node("progress", "jd-wish-progress");
    bar.max = wish.target;
    bar.value = wish.pledged;
    bar.setAttribute("aria-label", figures);
    card.append(head, node("p", "jd-wish-figures", figures), bar);
    return card;
  }

  function messageArea() {
    const area = node("p", "notice jd-wish-message");
    area.setAttribute("role", "status");
    return area;
  }

  function show(area, text, isError = false) {
    area.textContent = text;
    area.classList.toggle("notice", !isError);
    area.classList.toggle("error", isError);
  }

  // A list that pages with "more" and redraws itself on refresh and on a language switch.
  function pagedList(container, { load, draw, emptyKey }) {
    const list = node("ul", "jd-wish-list");
    const more = node("button", "secondary jd-wish-more", say("wall.more"));
    more.type = "button";
    more.hidden = true;
    const empty = node("p", "muted jd-wish-empty");
    container.append(list, empty, more);
    let nextCursor = null;

    async function page(cursor) {
      const data = await load(cursor);
      if (!cursor) list.replaceChildren();
      for (const wish of data.items) list.append(draw(wish));
      nextCursor = data.next_cursor;
      more.hidden = !nextCursor;
      more.textContent = say("wall.more");
      empty.textContent = list.children.length ? "" : say(emptyKey);
    }

    more.addEventListener("click", () => page(nextCursor));
    return { refresh: () => page(null) };
  }

  // --- the wallet -----------------------------------------------------------------------------

  function mountWallet(element, session) {
    withStyles();
    element.classList.add("card", "jd-wishes");
    const kind = session.kind ?? session.role;
    const canPledge = !kind || kind === "volunteer";
    const heading = node("h2", "jd-wishes-heading");
    const lead = node("p", "lead jd-wishes-lead");
    const message = messageArea();
    element.replaceChildren(heading, lead, message);
    const list = pagedList(element, {
      load: (cursor) => session.call("GET", listPath(session, "open", cursor)),
      draw: (wish) => walletCard(wish),
      emptyKey: "wall.empty",
    });

    function walletCard(wish) {
      const card = wishCard(wish);
      const stillNeeded = wish.target - wish.pledged;
      card.append(node("p", "muted jd-wish-needed", say("wish.still_needed", { beans: formatNumber(stillNeeded) })));
      if (canPledge && wish.status === "open") card.append(pledgeForm(wish, stillNeeded));
      return card;
    }

    function pledgeForm(wish, stillNeeded) {
      const form = node("form", "jd-pledge");
      form.noValidate = true;
      const inputId = `jd-pledge-${wish.id}`;
      const label = node("label", "jd-pledge-label", say("pledge.amount"));
      label.htmlFor = inputId;
      const input = node("input", "jd-pledge-amount");
      Object.assign(input, { id: inputId, name: "amount", type: "number", inputMode: "numeric", min: "1", step: "1" });
      input.max = String(stillNeeded);
      input.value = String(Math.min(stillNeeded, PLEDGE_BEANS_SUGGESTED));
      const button = node("button", "primary jd-pledge-submit", say("pledge.submit"));
      button.type = "submit";
      const error = node("p", "error jd-pledge-error");
      error.setAttribute("role", "alert");
      form.append(label, input, button, error);
      form.addEventListener("submit", async (submitted) => {
        submitted.preventDefault();
        const amount = Number(input.value);
        error.textContent = "";
        if (!Number.isInteger(amount) || amount < 1 || amount > stillNeeded) {
          error.textContent = say("pledge.invalid_amount", { max: stillNeeded });
          input.focus();
          return;
        }
        button.disabled = true;
        button.textContent = say("pledge.sending");
        try {
          await session.call("POST", wishPath(wish, "pledges"), { amount });
          show(message, say("pledge.done", { amount: formatNumber(amount) }));
          document.dispatchEvent(new CustomEvent("jindou:balance-changed"));
          await list.refresh();
        } catch (failure) {
          error.textContent = errorText(failure);
          button.disabled = false;
          button.textContent = say("pledge.submit");
        }
      });
      return form;
    }

    async function refresh() {
      heading.textContent = say("wall.heading");
      lead.textContent = say("wall.lead");
      try {
        await list.refresh();
      } catch (failure) {
        show(message, errorText(failure), true);
      }
    }

    onLanguageChange(element, refresh);
    return refresh().then(() => ({ refresh }));
  }

  // --- the staff console ----------------------------------------------------------------------

  async function loadMerchants(session) {
    const community = communityOf(session);
    if (!community) return null;
    try {
      const data = await session.call("GET", `/v1/communities/${encodeURIComponent(community)}/merchants`);
      return Array.isArray(data) ? data : data.items;
    } catch {
      return null; // no merchant list here: the console asks for the merchant's account ID instead
    }
  }

  // A merchant chooser: a select over the community's merchants, or an ID field without the list.
  function merchantChooser(merchants, blankKey) {
    if (!merchants) {
      const input = node("input", "jd-merchant");
      Object.assign(input, { name: "merchant_id", autocomplete: "off", spellcheck: false, maxLength: 100 });
      input.placeholder = say("staff.merchant.id");
      return input;
    }
    const select = node("select", "jd-merchant");
    select.name = "merchant_id";
    select.append(new Option(say(blankKey), ""));
    for (const merchant of merchants) select.append(new Option(merchant.display_name, merchant.id));
    return select;
  }

  function field(form, labelKey, control) {
    const id = `jd-${Math.random().toString(36).slice(2)}`;
    control.id = id;
    const label = node("label", null, say(labelKey));
    label.htmlFor = id;
    const error = node("p", "error jd-field-error");
    error.dataset.field = control.name;
    form.append(label, control, error);
    return control;
  }

  function showFieldError(form, failure, fallback) {
    for (const shown of form.querySelectorAll(".jd-field-error")) shown.textContent = "";
    const named = errorField(failure);
    const beside = named && form.querySelector(`.jd-field-error[data-field="${CSS.escape(named)}"]`);
    if (beside) beside.textContent = `${errorText(failure)} (${named})`;
    else show(fallback, errorText(failure), true);
  }

  function mountStaff(element, session) {
    withStyles();
    element.classList.add("jd-wishes", "jd-wishes-staff");
    const message = messageArea();
    let merchants = null;
    let status = "";

    const heading = node("h2", "jd-wishes-heading");
    const createBox = node("details", "card jd-wish-create");
    const filterLabel = node("label", "jd-filter-label");
    const filter = node("select", "jd-filter");
    filter.id = "jd-wish-filter";
    filterLabel.htmlFor = filter.id;
    const listBox = node("div", "jd-wish-staff-list");
    element.replaceChildren(heading, message, createBox, filterLabel, filter, listBox);
    const list = pagedList(listBox, {
      load: (cursor) => session.call("GET", listPath(session, status || null, cursor)),
      draw: (wish) => staffCard(wish),
      emptyKey: "staff.empty",
    });

    function drawCreateForm() {
      const summary = node("summary", null, say("staff.create"));
      const form = node("form", "jd-create-form");
      form.noValidate = true;
      const title = field(form, "staff.title", Object.assign(node("input"), { name: "title", maxLength: TITLE_LENGTH_MAX }));
      const story = field(form, "staff.story", Object.assign(node("textarea"), { name: "story", maxLength: STORY_LENGTH_MAX, rows: 3 }));
      const target = field(form, "staff.target", Object.assign(node("input"), {
        name: "target", type: "number", inputMode: "numeric", min: "1", max: String(TARGET_BEANS_MAX), step: "1",
      }));
      const beneficiary = field(form, "staff.beneficiary", Object.assign(node("input"), {
        name: "beneficiary_id", maxLength: 100, autocomplete: "off", spellcheck: false,
      }));
      const merchant = field(form, "staff.merchant", merchantChooser(merchants, "staff.merchant.later"));
      const submit = node("button", "primary", say("staff.submit"));
      submit.type = "submit";
      form.append(submit);
      form.addEventListener("submit", async (submitted) => {
        submitted.preventDefault();
        const body = {
          community_id: communityOf(session), title: title.value.trim(), story: story.value.trim(),
          target: Number(target.value),
        };
        if (beneficiary.value.trim()) body.beneficiary_id = beneficiary.value.trim();
        if (merchant.value.trim()) body.merchant_id = merchant.value.trim();
        submit.disabled = true;
        try {
          await session.call("POST", "/v1/wishes", body);
          form.reset();
          for (const shown of form.querySelectorAll(".jd-field-error")) shown.textContent = "";
          show(message, say("staff.created"));
          await list.refresh();
        } catch (failure) {
          showFieldError(form, failure, message);
        } finally {
          submit.disabled = false;
        }
      });
      createBox.replaceChildren(summary, form);
    }

    function drawFilter() {
      filterLabel.textContent = say("staff.filter");
      filter.replaceChildren(new Option(say("staff.filter.all"), ""),
        ...STATUSES.map((value) => new Option(say(`status.${value}`), value)));
      filter.value = status;
    }

    filter.addEventListener("change", () => {
      status = filter.value;
      list.refresh().catch((failure) => show(message, errorText(failure), true));
    });

    function staffCard(wish) {
      const card = wishCard(wish);
      const actions = node("div", "jd-wish-actions");
      const error = node("p", "error jd-action-error");
      error.setAttribute("role", "alert");
      if (wish.status === "funded") actions.append(fulfilForm(wish, error));
      if (wish.status === "open" || wish.status === "funded") actions.append(cancelControl(wish, error));
      if (actions.children.length) card.append(actions, error);
      return card;
    }

    function fulfilForm(wish, error) {
      const form = node("form", "jd-fulfil");
      form.noValidate = true;
      const chooser = merchantChooser(merchants, "staff.merchant.chosen");
      chooser.setAttribute("aria-label", say("staff.merchant"));
      const button = node("button", "primary jd-fulfil-submit", say("staff.fulfil"));
      button.type = "submit";
      form.append(chooser, button);
      form.addEventListener("submit", async (submitted) => {
        submitted.preventDefault();
        const chosen = chooser.value.trim();
        await act(button, error, () => session.call("POST", wishPath(wish, "fulfil"), chosen ? { merchant_id: chosen } : {}),
          "staff.fulfilled");
      });
      return form;
    }

    // Cancelling returns every pledge: it asks once more, in the page (no browser dialog).
    function cancelControl(wish, error) {
      const box = node("div", "jd-cancel");
      const ask = node("button", "secondary jd-cancel-ask", say("staff.cancel"));
      ask.type = "button";
      const confirmation = node("div", "jd-cancel-confirm");
      confirmation.hidden = true;
      const yes = node("button", "danger jd-cancel-yes", say("staff.cancel.yes"));
      const no = node("button", "secondary jd-cancel-no", say("staff.cancel.no"));
      yes.type = no.type = "button";
      confirmation.append(node("p", null, say("staff.cancel.confirm")), yes, no);
      ask.addEventListener("click", () => { ask.hidden = true; confirmation.hidden = false; yes.focus(); });
      no.addEventListener("click", () => { ask.hidden = false; confirmation.hidden = true; ask.focus(); });
      yes.addEventListener("click", () => act(yes, error, () => session.call("POST", wishPath(wish, "cancel")), "staff.cancelled"));
      box.append(ask, confirmation);
      return box;
    }

    async function act(button, error, request, doneKey) {
      button.disabled = true;
      error.textContent = "";
      try {
        await request();
        show(message, say(doneKey));
        await list.refresh();
      } catch (failure) {
        error.textContent = errorText(failure);
        button.disabled = false;
      }
    }

    async function refresh() {
      heading.textContent = say("staff.heading");
      drawCreateForm();
      drawFilter();
      try {
        await list.refresh();
      } catch (failure) {
        show(message, errorText(failure), true);
      }
    }

    onLanguageChange(element, refresh);
    return loadMerchants(session).then((found) => {
      merchants = found;
      return refresh();
    }).then(() => ({ refresh }));
  }

  window.JindouWishes = { mountWallet, mountStaff };
})();
