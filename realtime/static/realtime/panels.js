// The page's strip of recent rejected deliveries (the rates are rates.js's).

import { element, localTime } from "./dom.js";

const REJECTIONS_KEPT = 200;
const REJECTIONS_SHOWN = 10;

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
