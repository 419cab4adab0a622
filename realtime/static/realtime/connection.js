// One WebSocket that keeps coming back. After any close the page reconnects
// with exponential backoff and full jitter, so a restarted server is not hit by
// every open dashboard in the same instant.

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;
// The server closes sockets that stay silent; a ping every 20 s keeps ours open.
const PING_EVERY_MS = 20000;
// No frame at all for this long, not even a pong: the link is dead even if the
// browser has not noticed (a laptop that slept, a proxy that dropped it).
const SILENCE_LIMIT_MS = 2 * PING_EVERY_MS + 5000;

export class Connection {
  // hooks: onOpen(), onMessage(message), onState(state) with state one of
  // "connecting", "live", "reconnecting", "offline".
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.socket = null;
    this.attempt = 0;
    this.state = "connecting";
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.showState());
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => this.opened(socket));
    socket.addEventListener("message", (event) => this.received(socket, event));
    // "error" is always followed by "close", where the retry is scheduled.
    socket.addEventListener("close", () => this.closed(socket));
  }

  // The page calls this on the server's hello: only then is the connection
  // really usable, so only then does the backoff start over.
  confirmed() {
    this.attempt = 0;
    this.setState("live");
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  opened(socket) {
    if (socket !== this.socket) return;
    this.lastFrameAt = Date.now();
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.keepAlive(), PING_EVERY_MS);
    this.hooks.onOpen();
  }

  received(socket, event) {
    if (socket !== this.socket) return; // a late frame from an abandoned socket
    this.lastFrameAt = Date.now();
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    this.hooks.onMessage(message);
  }

  closed(socket) {
    if (socket !== this.socket) return;
    this.drop();
    this.scheduleRetry();
  }

  keepAlive() {
    if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
      // close() on a dead link can wait a long time for the closing handshake;
      // do not wait for its close event before trying again.
      const socket = this.socket;
      this.drop();
      socket?.close();
      this.scheduleRetry();
      return;
    }
    this.send({ type: "ping" });
  }

  drop() {
    clearInterval(this.pingTimer);
    this.socket = null;
  }

  scheduleRetry() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    this.setState("reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), Math.random() * ceiling);
  }

  // Back online: waiting out the rest of a 30 s backoff would only look broken.
  reconnectNow() {
    this.showState();
    if (this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  setState(state) {
    this.state = state;
    this.showState();
  }

  showState() {
    this.hooks.onState(navigator.onLine === false ? "offline" : this.state);
  }
}
