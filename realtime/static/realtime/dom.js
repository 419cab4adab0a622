// Small DOM builders shared by the page's modules. Nothing here takes HTML:
// text is always set through textContent.

const STATUSES = new Set(["pending", "processing", "succeeded", "retrying", "failed", "skipped"]);

export function element(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

export function localTime(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : moment.toLocaleTimeString([], { hour12: false });
}

export function localDateTime(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : moment.toLocaleString([], { hour12: false });
}

// A class name built from data only when the value is one we know.
export function statusClass(status) {
  return `live-status live-status-${STATUSES.has(status) ? status : "unknown"}`;
}
