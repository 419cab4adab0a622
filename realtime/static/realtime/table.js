// The live table, newest on top. Whatever the store holds, at most MAX_ROWS rows
// are in the DOM, and rows are reused and patched in place, so the page stays
// smooth with 10,000 events. All text goes in through textContent: a payload's
// fields are attacker-controlled until proven otherwise.

import { element, localTime, statusClass } from "./dom.js";

export const MAX_ROWS = 500;
const COLUMNS = 6;

export class EventTable {
  // elements: tbody, empty (shown when no row), shown (the "n of m" note).
  constructor(store, elements, onOpen) {
    this.store = store;
    this.elements = elements;
    this.rows = new Map(); // id -> <tr>
    this.drawn = new Map(); // id -> the record each row shows
    this.filters = { endpoint: "", provider: "", status: "", text: "" };
    this.pausedAt = null; // while paused: the newest id the table may show
    this.selectedId = null;
    this.ready = false; // rows drawn after the first render are highlighted
    this.scheduled = false;
    elements.tbody.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-id]");
      if (row) onOpen(Number(row.dataset.id));
    });
  }

  setFilters(filters) {
    this.filters = { ...filters, text: filters.text.trim().toLowerCase() };
    this.schedule();
  }

  pause() {
    this.pausedAt = this.store.lastId;
  }

  resume() {
    this.pausedAt = null;
    this.schedule();
  }

  arrivedWhilePaused() {
    return this.pausedAt === null ? 0 : this.store.countAbove(this.pausedAt);
  }

  select(id) {
    this.rows.get(this.selectedId)?.classList.remove("live-selected");
    this.selectedId = id;
    this.rows.get(id)?.classList.add("live-selected");
  }

  // Many messages can arrive in one frame (a batch, a resume page): draw once.
  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render() {
    const { shown, total } = this.visible();
    this.place(shown);
    // Rows already there when the page opens are not news; only later ones flash.
    this.ready ||= shown.length > 0;
    this.elements.empty.hidden = shown.length > 0;
    this.elements.shown.textContent =
      total > shown.length ? `Showing the newest ${shown.length} of ${total}.` : "";
  }

  visible() {
    const shown = [];
    let total = 0;
    for (const record of this.store.newest()) {
      if (this.pausedAt !== null && record.id > this.pausedAt) continue;
      if (!this.matches(record)) continue;
      total++;
      if (shown.length < MAX_ROWS) shown.push(record);
    }
    return { shown, total };
  }

  matches(record) {
    const { endpoint, provider, status, text } = this.filters;
    return (
      (!endpoint || record.endpoint === endpoint) &&
      (!provider || record.provider === provider) &&
      (!status || record.status === status) &&
      (!text || record.haystack.includes(text))
    );
  }

  // Put the rows in order with as few DOM moves as possible: the usual update
  // (one new event on top) inserts one row and removes the last.
  place(records) {
    const tbody = this.elements.tbody;
    let next = tbody.firstChild;
    for (const record of records) {
      const row = this.rowFor(record);
      if (row === next) next = next.nextSibling;
      else tbody.insertBefore(row, next);
    }
    while (next) {
      const stale = next;
      next = next.nextSibling;
      this.rows.delete(Number(stale.dataset.id));
      this.drawn.delete(Number(stale.dataset.id));
      stale.remove();
    }
  }

  rowFor(record) {
    let row = this.rows.get(record.id);
    if (!row) {
      row = newRow(record.id, this.ready);
      this.rows.set(record.id, row);
    }
    if (this.drawn.get(record.id) !== record) {
      fill(row, record);
      this.drawn.set(record.id, record);
    }
    row.classList.toggle("live-selected", record.id === this.selectedId);
    return row;
  }
}

function newRow(id, highlight) {
  const row = element("tr", highlight ? "live-new" : "");
  row.dataset.id = String(id);
  for (let i = 0; i < COLUMNS; i++) row.append(element("td"));
  // The event type doubles as a button, so the detail panel opens from the keyboard too.
  row.cells[3].append(element("button", "live-open"));
  row.cells[5].append(element("span"));
  row.cells[3].className = "live-type";
  row.cells[2].className = "live-optional";
  row.cells[4].className = "live-optional";
  return row;
}

function fill(row, record) {
  const [time, endpoint, provider, type, delivery, status] = row.cells;
  time.textContent = localTime(record.received_at);
  time.title = record.received_at;
  endpoint.textContent = record.endpoint;
  provider.textContent = record.provider;
  const open = type.firstChild;
  open.textContent = record.event_type || "(no type)";
  open.setAttribute("aria-label", `Show event ${record.id}`);
  delivery.textContent = record.delivery_id;
  const badge = status.firstChild;
  badge.textContent = record.status;
  badge.className = statusClass(record.status);
  badge.title = record.last_error;
}
