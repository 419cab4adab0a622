// The page's side panels: counters of the last five minutes per endpoint, and
// the strip of recent rejected deliveries.

import { element, localTime } from "./dom.js";

const WINDOW_MS = 5 * 60 * 1000;
// Counters are redrawn at most this often, and at least this often so that old
// events age out of the window even when nothing arrives.
const COUNTER_REFRESH_MS = 1000;
const REJECTIONS_KEPT = 200;
const REJECTIONS_SHOWN = 10;

export class Counters {
  constructor(store, rejections, tbody) {
    this.store = store;
    this.rejections = rejections;
    this.tbody = tbody;
    this.dirty = true;
    setInterval(() => this.refresh(), COUNTER_REFRESH_MS);
  }

  // Soon, not at once: a burst of events costs one count, not one per event.
  changed() {
    this.dirty = true;
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      this.refresh();
    }, 100);
  }

  refresh(now = Date.now()) {
    const counts = this.count(now - WINDOW_MS);
    if (!this.dirty && sameCounts(counts, this.shown)) return;
    this.dirty = false;
    this.shown = counts;
    const rows = [...counts.keys()].sort().map((endpoint) => counterRow(endpoint, counts.get(endpoint)));
    if (rows.length === 0) rows.push(emptyRow());
    this.tbody.replaceChildren(...rows);
  }

  count(cutoff) {
    const counts = new Map();
    const entry = (endpoint) => {
      if (!counts.has(endpoint)) counts.set(endpoint, { received: 0, failed: 0, rejected: 0 });
      return counts.get(endpoint);
    };
    for (const record of this.store.newest()) {
      if (record.receivedMs < cutoff) continue;
      const counter = entry(record.endpoint);
      counter.received++;
      if (record.status === "failed") counter.failed++;
    }
    for (const rejection of this.rejections.items) {
      if (rejection.atMs >= cutoff) entry(rejection.endpoint).rejected++;
    }
    return counts;
  }
}

function sameCounts(a, b) {
  if (!b || a.size !== b.size) return false;
  for (const [endpoint, counter] of a) {
    const other = b.get(endpoint);
    if (!other || other.received !== counter.received || other.failed !== counter.failed || other.rejected !== counter.rejected) return false;
  }
  return true;
}

function counterRow(endpoint, counter) {
  const row = element("tr");
  row.append(element("th", "", endpoint));
  row.firstChild.scope = "row";
  row.append(element("td", "", String(counter.received)));
  row.append(element("td", counter.failed ? "live-bad" : "", String(counter.failed)));
  row.append(element("td", counter.rejected ? "live-bad" : "", String(counter.rejected)));
  return row;
}

function emptyRow() {
  const row = element("tr");
  const cell = element("td", "help", "Nothing in the last five minutes.");
  cell.colSpan = 4;
  row.append(cell);
  return row;
}

export class RejectionStrip {
  // The server renders the latest rejections with the page, as list items with
  // data-attributes; they seed the strip, which the socket then keeps current.
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
    this.items = [...list.children].map((item) => toRejection({
      endpoint: item.dataset.endpoint,
      reason: item.dataset.reason,
      source_ip: item.dataset.sourceIp,
      at: item.dataset.at,
    }));
    this.render();
  }

  add(rejection) {
    this.items.unshift(toRejection(rejection));
    this.items.length = Math.min(this.items.length, REJECTIONS_KEPT);
    this.render();
  }

  render() {
    const shown = this.items.slice(0, REJECTIONS_SHOWN).map(rejectionItem);
    this.list.replaceChildren(...shown);
    this.empty.hidden = shown.length > 0;
  }
}

function toRejection(raw) {
  const text = (value) => (value === null || value === undefined ? "" : String(value));
  const at = text(raw.at);
  return {
    endpoint: text(raw.endpoint),
    reason: text(raw.reason),
    source_ip: text(raw.source_ip),
    at,
    atMs: Date.parse(at) || 0,
  };
}

function rejectionItem(rejection) {
  const item = element("li");
  const time = element("time", "", localTime(rejection.at));
  time.dateTime = rejection.at;
  item.append(time, " ", element("strong", "", rejection.endpoint), " ");
  item.append(element("span", "live-reason", rejection.reason));
  if (rejection.source_ip) item.append(element("span", "live-ip", ` from ${rejection.source_ip}`));
  return item;
}
