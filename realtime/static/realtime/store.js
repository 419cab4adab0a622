// The events the page holds, one record per id. Pushes are hints that may repeat
// or arrive out of order, so every summary goes through put(): the latest one for
// an id replaces the earlier one, and no event is ever held twice.

// Bounded so that a page left open all day does not grow without end.
export const MAX_EVENTS = 10000;
// Trim in chunks, so a burst at the cap costs one splice rather than one per event.
const TRIM_SLACK = 500;

export class EventStore {
  constructor(limit = MAX_EVENTS) {
    this.limit = limit;
    this.byId = new Map();
    this.ids = []; // ascending, so the newest are at the end
    this.lastId = 0; // the highest id held: where a resume starts
  }

  get(id) {
    return this.byId.get(id);
  }

  // Store a summary; returns its record, or null for a summary without a usable id.
  put(summary) {
    const id = Number(summary?.id);
    if (!Number.isSafeInteger(id) || id <= 0) return null;
    const record = toRecord(summary, id);
    const isNew = !this.byId.has(id);
    this.byId.set(id, record);
    if (isNew) {
      this.insertId(id);
      this.lastId = Math.max(this.lastId, id);
      this.trim();
    }
    return record;
  }

  insertId(id) {
    const ids = this.ids;
    if (ids.length === 0 || id > ids[ids.length - 1]) {
      ids.push(id); // the usual case: a new event is the newest
      return;
    }
    let low = 0;
    let high = ids.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (ids[middle] < id) low = middle + 1;
      else high = middle;
    }
    ids.splice(low, 0, id);
  }

  trim() {
    if (this.ids.length <= this.limit + TRIM_SLACK) return;
    for (const id of this.ids.splice(0, this.ids.length - this.limit)) {
      this.byId.delete(id);
    }
  }

  // Records newest first.
  *newest() {
    for (let i = this.ids.length - 1; i >= 0; i--) yield this.byId.get(this.ids[i]);
  }

  countAbove(id) {
    let count = 0;
    for (let i = this.ids.length - 1; i >= 0 && this.ids[i] > id; i--) count++;
    return count;
  }
}

function toRecord(summary, id) {
  const text = (value) => (value === null || value === undefined ? "" : String(value));
  const record = {
    id,
    endpoint: text(summary.endpoint),
    provider: text(summary.provider),
    event_type: text(summary.event_type),
    delivery_id: text(summary.delivery_id),
    status: text(summary.status),
    attempts: Number(summary.attempts) || 0,
    received_at: text(summary.received_at),
    processed_at: text(summary.processed_at),
    last_error: text(summary.last_error),
    size: Number(summary.size) || 0,
  };
  // Parsed once here rather than on every counter refresh and every keystroke.
  record.receivedMs = Date.parse(record.received_at) || 0;
  record.haystack = [
    id, record.endpoint, record.provider, record.event_type,
    record.delivery_id, record.status, record.last_error,
  ].join("\n").toLowerCase();
  return record;
}
