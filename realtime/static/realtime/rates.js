// The figures the server computes for the page (realtime/rates.py): rates per
// endpoint over 5 minutes, an hour and a day, the throughput chart, the queue,
// and pausing. Polled every data-rates-seconds; drawn as SVG with DOM calls and
// classes only (no inline style, no inline script), so a strict CSP holds.

import { element, localTime } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const KINDS = ["received", "failed", "rejected", "ignored"];
const CHARTED = ["received", "failed", "rejected"];
const WINDOWS = ["5m", "1h", "1d"];
const WIDTH = 600;
const HEIGHT = 160;
const PAD = { left: 44, right: 8, top: 8, bottom: 20 };

export class Rates {
  constructor(root, parts) {
    this.root = root;
    this.parts = parts;
    this.url = root.dataset.ratesUrl;
    this.everyMs = Math.max(1, Number(root.dataset.ratesSeconds) || 5) * 1000;
    this.canPause = root.dataset.canPause === "true";
    this.range = "15m";
    this.report = null;
    this.polls = 0;
    for (const button of parts.ranges) {
      button.addEventListener("click", () => this.setRange(button.dataset.range));
    }
  }

  start() {
    this.poll();
    this.timer = setInterval(() => this.poll(), this.everyMs);
  }

  async poll() {
    try {
      const response = await fetch(this.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.report = await response.json();
      this.polls++;
      this.root.dataset.ratesPolls = String(this.polls);
      this.render();
    } catch (error) {
      this.parts.at.textContent = `(not refreshed: ${error.message})`;
    }
  }

  setRange(range) {
    this.range = range;
    for (const button of this.parts.ranges) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    if (this.report) this.drawChart();
  }

  render() {
    this.drawCounters();
    this.drawChart();
    this.drawQueue();
    this.parts.at.textContent = `As of ${localTime(this.report.at)}.`;
  }

  drawCounters() {
    const rows = this.report.endpoints.map((endpoint) => this.counterRow(endpoint));
    if (rows.length === 0) {
      const row = element("tr");
      const cell = element("td", "help", "No endpoints yet.");
      cell.colSpan = 6;
      row.append(cell);
      rows.push(row);
    }
    this.parts.counters.replaceChildren(...rows);
  }

  counterRow(endpoint) {
    const row = element("tr");
    row.dataset.endpoint = endpoint.endpoint;
    const name = element("th", "", endpoint.endpoint);
    name.scope = "row";
    if (endpoint.unhealthy) name.append(" ", element("span", "live-flag live-bad", "unhealthy"));
    row.append(name);
    for (const kind of KINDS) {
      const values = WINDOWS.map((window) => endpoint.counts[window][kind]);
      const bad = kind !== "received" && kind !== "ignored" && values[0] > 0;
      const cell = element("td", bad ? "live-bad live-rate" : "live-rate", values.join(" / "));
      cell.dataset.kind = kind;
      cell.title = `${kind}: last 5 minutes / hour / day`;
      row.append(cell);
    }
    row.append(this.processingCell(endpoint));
    return row;
  }

  processingCell(endpoint) {
    const cell = element("td", "live-processing");
    if (endpoint.paused) {
      const label = element("span", "live-flag live-paused-flag", "paused");
      label.title = endpoint.paused_reason;
      cell.append(label);
    } else {
      cell.append(element("span", "help", "running"));
    }
    if (this.canPause) {
      const action = endpoint.paused ? "resume" : "pause";
      const button = element("button", "button live-endpoint-action", endpoint.paused ? "Resume" : "Pause");
      button.type = "button";
      button.dataset.action = action;
      button.setAttribute("aria-label", `${endpoint.paused ? "Resume" : "Pause"} processing of ${endpoint.endpoint}`);
      button.addEventListener("click", () => this.change(endpoint.endpoint, action, button));
      cell.append(" ", button);
    }
    return cell;
  }

  async change(slug, action, button) {
    button.disabled = true;
    const url = this.root.dataset.processingUrl
      .replace("/endpoint-slug/", `/${encodeURIComponent(slug)}/`)
      .replace(/\/pause\/$/, `/${action}/`);
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": this.root.dataset.csrfToken, Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      this.parts.at.textContent = `(${action} failed: ${error.message})`;
    }
    await this.poll();
  }

  drawQueue() {
    const queue = this.report.queue;
    const paused = this.report.endpoints.filter((endpoint) => endpoint.paused);
    const parts = [
      `Queue lag ${formatSeconds(queue.lag_seconds)}`,
      `${queue.waiting} waiting`,
      `${queue.processing} processing`,
      `${queue.dead} dead`,
    ];
    const line = this.parts.queue;
    line.replaceChildren(parts.join(" · "));
    line.dataset.lag = String(queue.lag_seconds);
    line.classList.toggle("live-bad", queue.dead > 0 || queue.lag_seconds > 60);
    if (paused.length) {
      line.append(" · ", element("strong", "live-paused-flag", `Paused: ${paused.map((endpoint) => endpoint.endpoint).join(", ")}`));
    }
  }

  drawChart() {
    const points = this.report.series[this.range] || [];
    const svg = this.parts.chart;
    const peak = Math.max(0, ...points.flatMap((point) => CHARTED.map((kind) => point[kind])));
    const top = niceCeiling(peak);
    const x = (index) => PAD.left + (index * (WIDTH - PAD.left - PAD.right)) / Math.max(1, points.length - 1);
    const y = (value) => HEIGHT - PAD.bottom - (value / top) * (HEIGHT - PAD.top - PAD.bottom);
    const children = [];
    for (const fraction of [0, 0.5, 1]) {
      const level = y(top * fraction);
      children.push(svgElement("line", "live-grid", { x1: PAD.left, x2: WIDTH - PAD.right, y1: level, y2: level }));
      children.push(svgText("live-axis", PAD.left - 4, level + 4, formatRate(top * fraction), "end"));
    }
    if (points.length) {
      children.push(svgText("live-axis", PAD.left, HEIGHT - 4, localTime(points[0].at), "start"));
      children.push(svgText("live-axis", WIDTH - PAD.right, HEIGHT - 4, localTime(points[points.length - 1].at), "end"));
    }
    for (const kind of CHARTED) {
      const coordinates = points.map((point, index) => `${x(index).toFixed(1)},${y(point[kind]).toFixed(1)}`);
      const line = svgElement("polyline", `live-line live-line-${kind}`, { points: coordinates.join(" ") });
      line.dataset.kind = kind;
      children.push(line);
    }
    svg.replaceChildren(...children);
    const total = points.reduce((sum, point) => sum + point.count, 0);
    svg.dataset.range = this.range;
    svg.dataset.total = String(total);
    svg.setAttribute("aria-label", `Deliveries per second over the last ${this.range === "15m" ? "15 minutes" : "24 hours"}: ${total} received`);
    this.parts.peak.textContent = peak ? `(peak ${formatRate(peak)}/s)` : "";
  }
}

function svgElement(tag, className, attributes) {
  const node = document.createElementNS(SVG, tag);
  node.setAttribute("class", className);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function svgText(className, x, y, text, anchor) {
  const node = svgElement("text", className, { x, y, "text-anchor": anchor });
  node.textContent = text;
  return node;
}

function niceCeiling(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function formatRate(value) {
  if (value === 0) return "0";
  if (value >= 10) return value.toFixed(0);
  if (value >= 1) return value.toFixed(1);
  return value.toPrecision(2);
}

function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
