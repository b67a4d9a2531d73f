// Server-Sent Events read with fetch(), for a stream that needs a header
// EventSource cannot send (Authorization: Bearer). Pure: no DOM, so it runs
// under Node as in the browser (test/sse.test.mjs).
//
// SSEParser turns the stream's text, in chunks cut anywhere, into messages
// as the HTML standard's event stream interpretation does: lines end with
// CRLF, LF or CR (a CRLF may be cut between chunks); a leading BOM is
// dropped; `:` lines are comments (the server's heartbeats); `data:` lines
// join with "\n"; `event:` names the message (default "message"); `id:`
// sets the last event id (one holding NUL is ignored), kept even by a
// message without data; `retry:` (digits only) sets the reconnection delay;
// a blank line dispatches; what is left unfinished at the end is dropped.
//
// FetchEventSource follows a stream like EventSource (readyState, open,
// error, a listener per event name, lastEventId, close), resuming with
// Last-Event-ID after a drop, after the server's `retry:` delay (as
// EventSource does); a refusal other than 401/403 (a 503 of a full server,
// a body that is not an event stream) is tried again after refusedDelay (as
// the page's EventSource path does when EventSource gives up). A 401 or 403
// closes it for good: a "refused" event carries the status and the
// problem+json body, for the page to ask for a credential again.

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 2;

export class SSEParser {
  #buf = ''; // the line being read
  #afterCR = false; // the last chunk ended with CR: a LF first in the next is the same line end
  #started = false; // past a leading BOM
  #data = [];
  #event = '';
  #id = ''; // the last event id buffer

  /** onMessage({type, data, lastEventId}); onRetry(ms); onComment(text);
   * lastEventId: the id a resumed stream starts from. */
  constructor({ onMessage = () => {}, onRetry = () => {}, onComment = () => {}, lastEventId = '' } = {}) {
    this.onMessage = onMessage;
    this.onRetry = onRetry;
    this.onComment = onComment;
    this.#id = lastEventId;
    this.lastEventId = lastEventId;
  }

  /** Reads a chunk of the stream's text. */
  push(text) {
    if (!this.#started && text.length) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    if (this.#afterCR && text.charCodeAt(0) === 10) start = 1;
    if (text.length) this.#afterCR = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.#buf + text.slice(start, i);
      this.#buf = '';
      if (c === 13) {
        if (i + 1 === text.length) this.#afterCR = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      this.#line(line);
    }
    this.#buf += text.slice(start);
  }

  /** The stream ended: a message not finished by a blank line is dropped. */
  end() {
    this.#buf = '';
    this.#data = [];
    this.#event = '';
    this.#afterCR = false;
  }

  #line(line) {
    if (line === '') {
      this.lastEventId = this.#id;
      if (this.#data.length) {
        const msg = { type: this.#event || 'message', data: this.#data.join('\n'), lastEventId: this.lastEventId };
        this.#data = [];
        this.#event = '';
        this.onMessage(msg);
      } else {
        this.#event = '';
      }
      return;
    }
    if (line.charCodeAt(0) === 58) { // ':'
      this.onComment(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data': this.#data.push(value); break;
      case 'event': this.#event = value; break;
      case 'id': if (!value.includes('\0')) this.#id = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.onRetry(Number(value)); break;
      default: // ignored, as the standard says
    }
  }
}

/** An event stream read with fetch(), with headers() on every request. */
export class FetchEventSource {
  #listeners = new Map();
  #ctl = null;
  #timer = 0;
  #fetch;
  #headers;
  #setTimeout;
  #clearTimeout;

  /**
   * url: the stream; options: headers() → extra request headers (asked
   * anew on each connection), lastEventId (resume after it), retry (ms
   * before a reconnection, until the server says otherwise; EventSource's
   * usual 3 s), refusedDelay (ms before trying again after a refusal),
   * fetch, setTimeout, clearTimeout (for tests).
   */
  constructor(url, { headers = () => ({}), lastEventId = '', retry = 3000, refusedDelay = 10_000, fetch: f, setTimeout: st, clearTimeout: ct } = {}) {
    this.url = url;
    this.lastEventId = lastEventId ? String(lastEventId) : '';
    this.retry = retry;
    this.refusedDelay = refusedDelay;
    this.readyState = CONNECTING;
    this.connections = 0; // requests made, for tests and the page's read-out
    this.#fetch = f || ((...a) => globalThis.fetch(...a));
    this.#headers = headers;
    this.#setTimeout = st || ((...a) => globalThis.setTimeout(...a));
    this.#clearTimeout = ct || ((...a) => globalThis.clearTimeout(...a));
    this.#later(0);
  }

  addEventListener(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    const set = this.#listeners.get(type);
    if (set) set.delete(fn);
  }

  /** Stops for good: no reconnection, the request in flight aborted. */
  close() {
    this.readyState = CLOSED;
    this.#clearTimeout(this.#timer);
    this.#timer = 0;
    if (this.#ctl) this.#ctl.abort();
    this.#ctl = null;
  }

  #emit(type, ev = {}) {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn({ type, ...ev }); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }

  #later(ms) {
    if (this.readyState === CLOSED) return;
    this.readyState = CONNECTING;
    this.#clearTimeout(this.#timer);
    this.#timer = this.#setTimeout(() => { this.#timer = 0; this.#connect(); }, ms);
  }

  async #connect() {
    if (this.readyState === CLOSED) return;
    const ctl = new AbortController();
    this.#ctl = ctl;
    const closed = () => this.readyState === CLOSED || this.#ctl !== ctl;
    const headers = { Accept: 'text/event-stream', ...this.#headers() };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    this.connections++;
    let res;
    try {
      res = await this.#fetch(this.url, { headers, signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (error) {
      if (closed()) return;
      this.#emit('error', { error });
      this.#later(this.retry);
      return;
    }
    if (closed()) { cancel(res); return; }
    if (res.status === 401 || res.status === 403) {
      let problem = null;
      try { problem = await res.json(); } catch { /* not problem+json */ }
      if (closed()) return;
      this.close();
      this.#emit('refused', { status: res.status, problem });
      this.#emit('error', { status: res.status });
      return;
    }
    const ctype = res.headers.get('Content-Type') || '';
    if (!res.ok || !res.body || !ctype.toLowerCase().startsWith('text/event-stream')) {
      cancel(res);
      this.#emit('error', { status: res.status });
      this.#later(this.refusedDelay);
      return;
    }
    this.readyState = OPEN;
    this.#emit('open');
    const parser = new SSEParser({
      lastEventId: this.lastEventId,
      onMessage: (m) => { if (!closed()) { this.lastEventId = m.lastEventId; this.#emit(m.type, { data: m.data, lastEventId: m.lastEventId }); } },
      onRetry: (ms) => { this.retry = ms; },
      onComment: (text) => { if (!closed()) this.#emit('comment', { data: text }); },
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || closed()) break;
        parser.push(value);
        // An id with no data moves the last event id too.
        if (!closed()) this.lastEventId = parser.lastEventId;
      }
    } catch (error) {
      if (closed()) return;
      this.#emit('error', { error });
      this.#later(this.retry);
      return;
    }
    parser.end();
    if (closed()) { reader.cancel().catch(() => {}); return; }
    this.#emit('error', {});
    this.#later(this.retry);
  }
}

function cancel(res) {
  if (res && res.body) res.body.cancel().catch(() => {});
}
