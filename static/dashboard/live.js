// Live cells over one WebSocket per page (protocol: platforms/live/consumers.py).
//
// Hooks any page can use, no framework needed:
//   data-live-account="<platform pk>:<login>"  element whose [data-field] children
//       (equity, margin, free, level, group, band) follow the account's margin row;
//       the element gets class lt-0/1/2 and data-lt / data-level.
//   data-live-symbol="<platform pk>:<SYMBOL>"   element whose [data-field] bid / ask follow quotes.
//   data-live-platforms="1,2" data-live-alerts="1"  (margin monitor) also receive every account
//       outside the Ok band; rows are added from <template data-live-row-template="pk"> and
//       tables [data-live-monitor="pk"] are kept ordered by band, then level.
//   data-live-exposure="1,2"  (net-exposure page) the platforms whose exposure it shows: when
//       one changes (a client trade in the user's scope, a coverage fill) the element gets a
//       "live-exposure" event (its htmx trigger re-reads the figures from the server).
//   data-live-status    the connection indicator;  data-live-badge  the margin-call count;
//   data-live-upstream="pk"  the upstream hub state;  data-live-notify  checkbox: sound +
//   browser notification when an account enters margin call.
// Every applied update dispatches "live:account" / "live:quote" events on the element.

const FIELDS = ["login", "equity", "margin", "free", "level", "lt", "group"];
const STATUS_TEXT = {
  live: "Live",
  connecting: "Connecting…",
  degraded: "Upstream hub down — showing last values",
  disconnected: "Disconnected — reconnecting…",
  revoked: "Access revoked — live updates stopped",
};
// An open socket is closed with 4403 and a reason when the user's grant is revoked: the page
// says why and does not reconnect (it would only be refused again).
const CLOSE_FORBIDDEN = 4403;

function collect() {
  const root = document.querySelector("[data-live-platforms]");
  const platforms = new Set();
  const accounts = {};
  const symbols = {};
  if (root) root.dataset.livePlatforms.split(",").filter(Boolean).forEach((p) => platforms.add(+p));
  const exposure = new Set();
  for (const el of document.querySelectorAll("[data-live-exposure]")) {
    el.dataset.liveExposure.split(",").filter(Boolean).forEach((p) => exposure.add(+p));
  }
  for (const el of document.querySelectorAll("[data-live-account]")) {
    const [pk, login] = el.dataset.liveAccount.split(":");
    if (!pk || !login) continue;
    platforms.add(+pk);
    (accounts[pk] ||= new Set()).add(+login);
  }
  for (const el of document.querySelectorAll("[data-live-symbol]")) {
    const [pk, symbol] = el.dataset.liveSymbol.split(":");
    platforms.add(+pk);
    (symbols[pk] ||= new Set()).add(symbol);
  }
  const asLists = (m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v]]));
  return {
    type: "watch",
    platforms: [...platforms],
    accounts: asLists(accounts),
    symbols: asLists(symbols),
    alerts: !!(root && root.dataset.liveAlerts === "1"),
    exposure: [...exposure],
  };
}

// Numbers read the same as on the server (dashboard/numbers.py, which holds the rules): a
// cell says its kind in data-kind and its decimals in data-digits (the currency's for money,
// the symbol's for prices); a negative figure gets the class "neg".
const NO_VALUE = "\u2014";
const UNKNOWN_DIGITS_MAX = 8;
const numberFormats = {};

// The fixed decimals of a kind; null: a price whose digits are unknown (up to 8, zeros cut).
function decimalsFor(kind, digits) {
  const d = digits === null || digits === undefined || digits === "" ? NaN : Number(digits);
  const valid = Number.isInteger(d) && d >= 0 && d <= 20;
  if (kind === "money") return valid ? d : 2;
  if (kind === "lots" || kind === "percent") return 2;
  if (kind === "price" || kind === "stop") return valid ? d : null;
  throw new Error(`unknown number kind ${kind}`);
}

function formatNumber(value, kind, digits) {
  const places = decimalsFor(kind, digits);
  if (value === null || value === undefined || typeof value === "boolean") return NO_VALUE;
  if (typeof value === "string" && !value.trim()) return NO_VALUE;
  const n = typeof value === "number" ? value : Number(String(value).trim());
  if (!Number.isFinite(n) || (kind === "stop" && n === 0)) return NO_VALUE;
  const price = kind === "price" || kind === "stop";
  const min = places === null ? 0 : places;
  const max = places === null ? UNKNOWN_DIGITS_MAX : places;
  const key = `${min}:${max}:${price}`;
  const format = (numberFormats[key] ||= new Intl.NumberFormat("en-US", {
    minimumFractionDigits: min,
    maximumFractionDigits: max,
    useGrouping: !price,
    roundingMode: "halfExpand",
    signDisplay: "negative",
  }));
  const text = format.format(n);
  return kind === "percent" ? `${text} %` : text;
}

// Write a value into a number cell with the cell's own kind and digits (default: money).
function setNumber(cell, value, kind) {
  const k = cell.dataset.kind || kind || "money";
  const text = formatNumber(value, k, cell.dataset.digits);
  cell.textContent = text;
  cell.classList.toggle("neg", text.startsWith("-"));
}
window.formatNumber = formatNumber;

// The mirror's column names on list pages and the account card, mapped to the feed's.
const ALIAS = { free_margin: "free", margin_level: "level" };

function flash(cell, previous, next) {
  const was = parseFloat(String(previous).replace(/,/g, ""));
  if (Number.isNaN(was) || was === next) return;
  cell.classList.remove("up", "down");
  void cell.offsetWidth; // restart the animation
  cell.classList.add(next > was ? "up" : "down");
}

class Live {
  constructor() {
    this.groups = {};
    this.upstream = {};
    this.alerting = new Set();
    this.attempts = 0;
    this.ws = null;
    this.resort = new Set();
    for (const holder of document.querySelectorAll("[data-live-groups]")) {
      const script = holder.querySelector("script");
      if (script) this.groups[holder.dataset.liveGroups] = JSON.parse(script.textContent || "{}");
    }
    for (const row of document.querySelectorAll("[data-live-account][data-lt]")) {
      if (+row.dataset.lt > 0) this.alerting.add(row.dataset.liveAccount);
    }
    const notify = document.querySelector("[data-live-notify]");
    if (notify) {
      notify.checked = localStorage.getItem("liveNotify") === "1";
      notify.addEventListener("change", () => {
        localStorage.setItem("liveNotify", notify.checked ? "1" : "0");
        if (notify.checked && "Notification" in window && Notification.permission === "default") {
          Notification.requestPermission();
        }
      });
    }
  }

  connect() {
    this.setStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = (this.ws = new WebSocket(scheme + location.host + "/ws/live/"));
    ws.onopen = () => {
      this.attempts = 0;
      this.watch = collect();
      this.alertsOn = this.watch.alerts;
      ws.send(JSON.stringify(this.watch));
      document.body.classList.remove("stale");
      this.setStatus();
    };
    ws.onmessage = (e) => this.onFrame(JSON.parse(e.data));
    ws.onclose = (e) => {
      document.body.classList.add("stale");
      if (e.code === CLOSE_FORBIDDEN && e.reason) {
        this.revoked = e.reason;
        this.setStatus("revoked");
        return;
      }
      this.setStatus("disconnected");
      const delay = Math.min(10000, 500 * 2 ** this.attempts++) * (0.5 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
  }

  // Is the socket up and allowed? (pages poll as a fallback only while it is not)
  isOpen() {
    return !!(this.ws && this.ws.readyState === WebSocket.OPEN && !this.revoked);
  }

  exposureChanged(pks) {
    const changed = new Set(pks.map(String));
    for (const el of document.querySelectorAll("[data-live-exposure]")) {
      if (el.dataset.liveExposure.split(",").some((pk) => changed.has(pk))) {
        el.dispatchEvent(new CustomEvent("live-exposure", { detail: { platforms: pks } }));
      }
    }
  }

  setStatus(forced) {
    let state = forced;
    if (!state && this.revoked) state = "revoked";
    if (!state) {
      const down = Object.values(this.upstream).some((up) => up === false);
      state = down ? "degraded" : "live";
    }
    let text = STATUS_TEXT[state];
    if (state === "revoked" && this.revoked) {
      text = `${this.revoked[0].toUpperCase()}${this.revoked.slice(1)} — live updates stopped`;
    }
    for (const el of document.querySelectorAll("[data-live-status]")) {
      el.hidden = false; // shown only on pages with live cells
      el.className = "live-status " + state;
      el.dataset.state = state;
      el.textContent = text;
      if (state === "revoked") el.title = "Reload the page once access is restored";
    }
    if (state === "degraded" || state === "revoked") document.body.classList.add("stale");
    else if (state === "live") document.body.classList.remove("stale");
  }

  setUpstream(pk, up) {
    this.upstream[pk] = up;
    for (const el of document.querySelectorAll(`[data-live-upstream="${pk}"]`)) {
      el.className = "upstream " + (up ? "up" : "down");
      el.textContent = up ? "hub connected" : "hub down";
    }
  }

  onFrame(frame) {
    if (frame.t === "snap") {
      if (frame.groups && Object.keys(frame.groups).length) this.groups[frame.p] = frame.groups;
      if (frame.known) this.setUpstream(frame.p, frame.up);
      if (this.alertsOn) {
        for (const key of [...this.alerting]) if (key.startsWith(frame.p + ":")) this.alerting.delete(key);
      }
      for (const row of frame.rows) this.applyRow(frame.p, row, false);
    } else if (frame.t === "u") {
      for (const [pk, up] of Object.entries(frame.status || {})) this.setUpstream(pk, up);
      for (const [pk, rows] of Object.entries(frame.rows || {})) {
        for (const row of rows) this.applyRow(pk, row, true);
      }
      for (const [pk, quotes] of Object.entries(frame.quotes || {})) {
        for (const q of quotes) this.applyQuote(pk, q);
      }
      for (const event of frame.events || []) {
        document.dispatchEvent(new CustomEvent("live:event", { detail: event }));
      }
      if (frame.exposure && frame.exposure.length) this.exposureChanged(frame.exposure);
    } else if (frame.t === "denied") {
      console.warn("live: not allowed to watch platforms", frame.platforms, frame.reason || "");
      // a grant narrowed while the page was open: its values for those platforms are stale
      const watched = (this.watch && this.watch.platforms) || [];
      if (frame.reason && watched.every((pk) => frame.platforms.includes(pk))) {
        this.revoked = frame.reason;
      }
    } else if (frame.t === "error") {
      console.warn("live: the server refused a message:", frame.message);
    }
    this.setStatus(this.ws && this.ws.readyState === WebSocket.OPEN ? undefined : "disconnected");
    this.updateBadge();
    for (const pk of this.resort) this.sortTable(pk);
    this.resort.clear();
  }

  applyRow(pk, row, live) {
    const key = `${pk}:${row[0]}`;
    const data = Object.fromEntries(FIELDS.map((f, i) => [f, row[i]]));
    let els = document.querySelectorAll(`[data-live-account="${key}"]`);
    if (!els.length && data.lt > 0) els = [this.newRow(pk, data)].filter(Boolean);
    const entering = data.lt > 0 && !this.alerting.has(key);
    if (data.lt > 0) this.alerting.add(key);
    else this.alerting.delete(key);
    const band = (this.groups[pk] || {})[data.group];
    for (const el of els) {
      const was = +(el.dataset.lt || 0);
      el.dataset.lt = data.lt;
      el.dataset.level = data.level ?? "";
      el.classList.remove("lt-0", "lt-1", "lt-2");
      el.classList.add("lt-" + data.lt);
      for (const cell of el.querySelectorAll("[data-field]")) {
        const f = ALIAS[cell.dataset.field] || cell.dataset.field;
        if (f === "equity" || f === "margin" || f === "free" || f === "level") {
          if (data[f] === null || data[f] === undefined) continue;
          if (live) flash(cell, cell.textContent, data[f]);
          setNumber(cell, data[f], f === "level" ? "percent" : "money");
        } else if (f === "group" && data.group) cell.textContent = data.group;
        else if (f === "band" && band) cell.textContent = `${Math.round(band[0])} / ${Math.round(band[1])}`;
      }
      if (live && was === 0 && data.lt > 0) {
        el.classList.add("flash");
        setTimeout(() => el.classList.remove("flash"), 1500);
      }
      el.dispatchEvent(new CustomEvent("live:account", { bubbles: true, detail: data }));
      const table = el.closest("[data-live-monitor]");
      if (table) this.resort.add(table.dataset.liveMonitor);
    }
    if (live && entering) this.notify(pk, data);
  }

  newRow(pk, data) {
    const template = document.querySelector(`template[data-live-row-template="${pk}"]`);
    const table = document.querySelector(`[data-live-monitor="${pk}"]`);
    if (!template || !table) return null;
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.liveAccount = `${pk}:${data.login}`;
    const link = row.querySelector('[data-field="login"]');
    link.textContent = data.login;
    link.href = table.dataset.accountUrl.replace(/\/0\/$/, `/${data.login}/`);
    const alertCell = row.querySelector('[data-field="alert"]');
    if (alertCell && table.dataset.alertUrl) {
      const url = table.dataset.alertUrl.replace(/\/0\/alert\/$/, `/${data.login}/alert/`);
      alertCell.id = `alert-${pk}-${data.login}`;
      for (const [action, label] of [["ack", "Acknowledge"], ["assign", "Assign to me"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "small";
        button.textContent = label;
        button.setAttribute("hx-post", url);
        button.setAttribute("hx-vals", JSON.stringify({ action }));
        button.setAttribute("hx-target", "#" + alertCell.id);
        button.setAttribute("hx-swap", "outerHTML");
        alertCell.append(button, " ");
      }
    }
    table.tBodies[0].appendChild(row);
    if (window.htmx) window.htmx.process(row);
    return row;
  }

  sortTable(pk) {
    const table = document.querySelector(`[data-live-monitor="${pk}"]`);
    if (!table) return;
    const body = table.tBodies[0];
    const rows = [...body.rows];
    const rank = (r) => [-(+r.dataset.lt || 0), r.dataset.level === "" ? Infinity : +r.dataset.level];
    const sorted = [...rows].sort((a, b) => {
      const [a1, a2] = rank(a);
      const [b1, b2] = rank(b);
      return a1 - b1 || a2 - b2;
    });
    if (sorted.some((r, i) => r !== rows[i])) body.append(...sorted);
  }

  applyQuote(pk, [symbol, bid, ask]) {
    for (const el of document.querySelectorAll(`[data-live-symbol="${pk}:${symbol}"]`)) {
      const b = el.querySelector('[data-field="bid"]');
      const a = el.querySelector('[data-field="ask"]');
      if (b) { flash(b, b.textContent, bid); setNumber(b, bid, "price"); }
      if (a) { flash(a, a.textContent, ask); setNumber(a, ask, "price"); }
      el.dispatchEvent(new CustomEvent("live:quote", { bubbles: true, detail: { symbol, bid, ask } }));
    }
  }

  updateBadge() {
    if (!this.alertsOn) return;
    for (const el of document.querySelectorAll("[data-live-badge]")) {
      el.textContent = this.alerting.size;
      el.classList.toggle("alert", this.alerting.size > 0);
    }
  }

  notify(pk, data) {
    if (localStorage.getItem("liveNotify") !== "1") return;
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.2);
    } catch (e) { /* no audio */ }
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(`Margin call: ${data.login}`, { body: `Level ${formatNumber(data.level, "percent")}` });
    }
  }
}

// Trade rows ([data-live-trade="<ticket>"]) follow the trade events of the accounts the page
// watches: profit updates in place, a closed or deleted trade is struck through.
document.addEventListener("live:event", (event) => {
  const e = event.detail;
  if (e.e !== "trade" || e.order === undefined) return;
  for (const row of document.querySelectorAll(`[data-live-trade="${e.order}"]`)) {
    if (e.kind === "Deleted") {
      row.classList.add("gone");
      continue;
    }
    const cell = row.querySelector('[data-field="profit"]');
    if (cell && e.profit !== undefined && e.profit !== null) {
      flash(cell, cell.textContent, e.profit);
      setNumber(cell, e.profit, "money");
    }
  }
});

const hasHooks = document.querySelector(
  "[data-live-platforms], [data-live-account], [data-live-symbol], [data-live-exposure]",
);
if (hasHooks) {
  window.live = new Live();
  window.live.connect();
}
