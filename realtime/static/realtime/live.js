// The live dashboard (CONTRACT.md section 7). A static ES module: the page has no
// inline script, so it works under a strict Content-Security-Policy, and it reads
// its settings from the data-attributes of #live.

import { Connection } from "./connection.js";
import { DetailPanel } from "./detail.js";
import { Feed } from "./feed.js";
import { RejectionStrip } from "./panels.js";
import { Rates } from "./rates.js";
import { EventStore } from "./store.js";
import { EventTable } from "./table.js";

const STATE_LABELS = { connecting: "connecting", live: "live", reconnecting: "reconnecting", offline: "offline" };
const NOTICE_MS = 8000;

const byId = (id) => document.getElementById(id);

function main(root) {
  const store = new EventStore();
  const rejections = new RejectionStrip(byId("live-rejections"), byId("live-rejections-empty"));
  const rates = new Rates(root, {
    counters: byId("live-counters"),
    at: byId("live-rates-at"),
    chart: byId("live-chart"),
    peak: byId("live-chart-peak"),
    ranges: [...root.querySelectorAll(".live-ranges button")],
    queue: byId("live-queue"),
  });
  const detail = new DetailPanel(detailElements(), {
    urlFor: (id) => root.dataset.detailUrl.replace(/\/0\/$/, `/${id}/`),
    replay: (id) => connection.send({ type: "replay", id }),
    closed: () => table.select(null),
  });
  const table = new EventTable(
    store,
    { tbody: byId("live-rows"), empty: byId("live-empty"), shown: byId("live-shown") },
    (id) => {
      table.select(id);
      detail.open(id);
    },
  );
  const filters = new FilterForm(byId("live-filters"), (values) => table.setFilters(values));
  const pause = new PauseControl(byId("live-pause"), byId("live-paused"), table);
  detail.setCanReplay(root.dataset.canReplay === "true");

  const feed = new Feed(store, (message) => connection.send(message), {
    onHello: (hello) => {
      connection.confirmed();
      detail.setCanReplay(hello.can_replay);
    },
    onEvents: (records) => {
      filters.learn(records);
      for (const record of records) detail.update(record);
      pause.update();
      table.schedule();
    },
    onRejection: (rejection) => {
      rejections.add(rejection);
    },
    onError: (error) => {
      detail.failed(error.error);
      notice(`${error.error || "error"}: ${error.detail || ""}`);
    },
  });
  const connection = new Connection(socketUrl(root.dataset.websocketPath), {
    onOpen: () => feed.connected(),
    onMessage: (message) => feed.handle(message),
    onState: showState,
  });
  table.render();
  rates.start();
  connection.start();
}

// wss: on an https page: browsers refuse ws: from a secure page.
function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

function detailElements() {
  return {
    panel: byId("live-detail"),
    title: byId("live-detail-title"),
    summary: byId("live-detail-summary"),
    headers: byId("live-headers"),
    payload: byId("live-payload"),
    body: byId("live-body"),
    replay: byId("live-replay"),
    adminLink: byId("live-admin-link"),
    note: byId("live-detail-note"),
    close: byId("live-detail-close"),
  };
}

function showState(state) {
  const badge = byId("live-state");
  badge.dataset.state = state;
  badge.textContent = STATE_LABELS[state] || state;
}

let noticeTimer = null;
function notice(text) {
  const area = byId("live-notice");
  area.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (area.textContent = ""), NOTICE_MS);
}

// Filters apply in the page, without a reload; the endpoint and provider
// choices grow as events with new values arrive.
class FilterForm {
  constructor(form, onChange) {
    this.form = form;
    this.known = { endpoint: new Set(), provider: new Set() };
    const changed = () => onChange(this.values());
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  values() {
    const data = new FormData(this.form);
    const value = (name) => String(data.get(name) || "");
    return { endpoint: value("endpoint"), provider: value("provider"), status: value("status"), text: value("text") };
  }

  learn(records) {
    for (const record of records) {
      for (const name of ["endpoint", "provider"]) this.addChoice(name, record[name]);
    }
  }

  addChoice(name, value) {
    if (!value || this.known[name].has(value)) return;
    this.known[name].add(value);
    const select = this.form.elements[name];
    const options = [...select.options].slice(1); // after "All"
    const before = options.find((option) => option.value > value) || null;
    select.insertBefore(new Option(value, value), before);
  }
}

// Pause freezes the table (statuses still update in place) so a row can be
// read without it scrolling away; what arrives meanwhile is counted, not lost.
class PauseControl {
  constructor(button, counter, table) {
    this.button = button;
    this.counter = counter;
    this.table = table;
    button.addEventListener("click", () => this.toggle());
  }

  toggle() {
    const pausing = this.table.pausedAt === null;
    if (pausing) this.table.pause();
    else this.table.resume();
    this.button.textContent = pausing ? "Resume" : "Pause";
    this.button.setAttribute("aria-pressed", String(pausing));
    this.update();
  }

  update() {
    const paused = this.table.pausedAt !== null;
    this.counter.hidden = !paused;
    if (paused) {
      const count = this.table.arrivedWhilePaused();
      this.counter.textContent = `Paused: ${count} new ${count === 1 ? "event" : "events"} since`;
    }
  }
}

const root = byId("live");
// Module scripts run after the document is parsed, so the elements exist.
if (root) main(root);
