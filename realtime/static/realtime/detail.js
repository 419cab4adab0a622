// The detail panel: one event's summary, headers, payload and raw body, fetched
// from the detail JSON URL. Everything is inserted as text, so a payload holding
// <script> or an onerror attribute is shown, never run.

import { element, localDateTime, statusClass } from "./dom.js";

const SUMMARY_FIELDS = [
  ["Endpoint", "endpoint"],
  ["Provider", "provider"],
  ["Event type", "event_type"],
  ["Delivery id", "delivery_id"],
  ["Status", "status"],
  ["Attempts", "attempts"],
  ["Received", "received_at"],
  ["Processed", "processed_at"],
  ["Size", "size"],
  ["Last error", "last_error"],
];
// A replay answers through event.updated, or an error frame; stop waiting after this.
const REPLAY_WAIT_MS = 15000;

export class DetailPanel {
  // elements: panel, title, summary, headers, payload, body, replay, adminLink, note, close.
  // hooks: urlFor(id), replay(id), closed().
  constructor(elements, hooks) {
    this.elements = elements;
    this.hooks = hooks;
    this.id = null;
    this.canReplay = false;
    elements.close.addEventListener("click", () => this.close());
    elements.replay.addEventListener("click", () => this.replay());
  }

  async open(id) {
    this.id = id;
    const { panel, title, headers, payload, body, note } = this.elements;
    panel.hidden = false;
    title.textContent = `Event #${id}`;
    for (const pre of [headers, payload, body]) pre.textContent = "";
    note.textContent = "Loading…";
    this.showReplay();
    panel.scrollIntoView({ block: "nearest" });
    const data = await this.fetch(id);
    if (this.id !== id) return; // another event was opened meanwhile
    if (data) this.show(data);
  }

  async fetch(id) {
    const note = this.elements.note;
    try {
      const response = await fetch(this.hooks.urlFor(id), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!(response.headers.get("Content-Type") || "").includes("application/json")) {
        // admin_view answered with the login page: the session has ended.
        note.textContent = "Your session has ended: reload the page to log in again.";
        return null;
      }
      const data = await response.json();
      if (!response.ok) {
        note.textContent = data.error === "not_found" ? "This event no longer exists." : `Could not load the event (${data.error || response.status}).`;
        return null;
      }
      return data;
    } catch {
      note.textContent = "Could not load the event: the server did not answer.";
      return null;
    }
  }

  show(data) {
    const { headers, payload, body, adminLink, note } = this.elements;
    note.textContent = "";
    this.update(data.event);
    headers.textContent = Object.entries(data.headers || {})
      .map(([name, value]) => `${name}: ${value}`)
      .join("\n");
    payload.textContent = data.payload === null ? "(not parsed: the body is not JSON or a form)" : JSON.stringify(data.payload, null, 2);
    body.textContent = data.body_base64 === null
      ? data.body
      : `(not valid UTF-8; shown with replacement characters, base64 below)\n${data.body}\n\n${data.body_base64}`;
    // Only a same-site path becomes a link: never a javascript: or foreign URL.
    const url = String(data.admin_url || "");
    adminLink.hidden = !(url.startsWith("/") && !url.startsWith("//"));
    if (!adminLink.hidden) adminLink.href = url;
  }

  // A fresher summary of the open event (its status changed).
  update(summary) {
    if (!summary || Number(summary.id) !== this.id) return;
    const rows = [];
    for (const [label, field] of SUMMARY_FIELDS) {
      let value = summary[field];
      if (value === null || value === undefined || value === "") continue;
      if (field.endsWith("_at")) value = localDateTime(value);
      const term = element("dt", "", label);
      const description = element("dd");
      if (field === "status") description.append(element("span", statusClass(value), value));
      // A traceback keeps its lines, as on the event's admin page.
      else if (field === "last_error") description.append(element("pre", "live-error", String(value)));
      else description.textContent = field === "size" ? `${value} bytes` : String(value);
      rows.push(term, description);
    }
    this.elements.summary.replaceChildren(...rows);
    if (this.waitingForReplay) this.replayDone(`Replay queued: the event is ${summary.status} now.`);
  }

  setCanReplay(canReplay) {
    this.canReplay = Boolean(canReplay);
    this.showReplay();
  }

  showReplay() {
    this.elements.replay.hidden = !this.canReplay || this.id === null;
    this.elements.replay.disabled = false;
    this.waitingForReplay = false;
  }

  replay() {
    if (this.id === null || !this.canReplay) return;
    this.hooks.replay(this.id);
    this.waitingForReplay = true;
    this.elements.replay.disabled = true;
    this.elements.note.textContent = "Replay requested…";
    clearTimeout(this.replayTimer);
    this.replayTimer = setTimeout(() => this.replayDone(""), REPLAY_WAIT_MS);
  }

  replayDone(text) {
    clearTimeout(this.replayTimer);
    this.waitingForReplay = false;
    this.elements.replay.disabled = false;
    this.elements.note.textContent = text;
  }

  failed(error) {
    if (this.waitingForReplay) this.replayDone(`Replay refused: ${error}.`);
  }

  close() {
    this.id = null;
    this.elements.panel.hidden = true;
    this.hooks.closed();
  }
}
