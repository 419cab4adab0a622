// The client half of the protocol in CONTRACT.md section 7. The channel layer is
// at-most-once, so pushes are only hints: every (re)connect and every gap in the
// ids ends in a `resume`, and because the store merges by id, whatever arrives
// twice is harmless.

export class Feed {
  // send(message) writes to the socket; hooks get what the page shows:
  // onHello(hello), onEvents(records), onRejection(rejection), onError(error).
  constructor(store, send, hooks) {
    this.store = store;
    this.send = send;
    this.hooks = hooks;
    this.connected();
  }

  // A new socket is open: whatever was asked on the old one is lost.
  connected() {
    this.heldAtConnect = this.store.lastId;
    this.synced = false; // true once this socket's snapshot is applied
    this.resuming = false; // a resume is in flight on this socket
    this.owed = null; // a resume to send once the one in flight completes
  }

  handle(message) {
    switch (message?.type) {
      case "batch":
        for (const inner of message.messages ?? []) this.handle(inner);
        break;
      case "hello":
        this.hooks.onHello(message);
        break;
      case "snapshot":
        this.onSnapshot(message.events ?? []);
        break;
      case "event.received":
      case "event.updated":
        this.onEvent(message.event);
        break;
      case "resumed":
        this.onResumed(message.events ?? [], message.complete !== false);
        break;
      case "delivery.rejected":
        if (message.rejection) this.hooks.onRejection(message.rejection);
        break;
      case "error":
        // Errors do not say which request failed; never wait forever on a resume.
        this.resuming = false;
        this.hooks.onError(message);
        break;
      // "pong" needs nothing: the connection noted that a frame arrived.
    }
  }

  onSnapshot(events) {
    this.accept(events);
    this.synced = true;
    // After a reconnect: from the newest id held before it, so nothing that
    // arrived during the outage is missed even when it was more than the
    // snapshot's 50. On the first connect: from the snapshot's newest, which
    // catches anything stored while the snapshot was being read.
    const from = this.heldAtConnect || this.store.lastId;
    if (from > 0) this.requestResume(from);
  }

  onEvent(summary) {
    if (!summary) return;
    const held = this.store.lastId;
    // Ids can skip legitimately (rolled-back inserts); a resume that answers
    // nothing is cheap, a missed event is not.
    if (this.synced && Number(summary.id) > held + 1) this.requestResume(held);
    this.accept([summary]);
  }

  onResumed(events, complete) {
    this.accept(events);
    this.resuming = false;
    if (!complete && events.length > 0) {
      // The next page starts after this page's newest, not after store.lastId,
      // which a live push may already have moved past the missing ids.
      this.requestResume(Math.max(...events.map((event) => Number(event.id) || 0)));
      return;
    }
    if (this.owed !== null) {
      const from = this.owed;
      this.owed = null;
      this.requestResume(from);
    }
  }

  requestResume(afterId) {
    if (this.resuming) {
      this.owed = this.owed === null ? afterId : Math.min(this.owed, afterId);
      return;
    }
    this.resuming = true;
    this.send({ type: "resume", after_id: afterId });
  }

  accept(summaries) {
    const records = [];
    for (const summary of summaries) {
      const record = this.store.put(summary);
      if (record) records.push(record);
    }
    if (records.length > 0) this.hooks.onEvents(records);
  }
}
