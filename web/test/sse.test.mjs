// The fetch-based event stream (sse.js) under Node alone: the parser on
// streams cut at every place, and FetchEventSource against a real HTTP
// server on loopback (resume with Last-Event-ID, the server's retry, a
// refusal tried again, a 401 that stops it).
//
//   cd web && node --test test/sse.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { CLOSED, FetchEventSource, SSEParser } from '../sse.js';

/** What a parser makes of the chunks: messages, retries and comments, in order. */
function parse(chunks, opts = {}) {
  const out = [];
  const p = new SSEParser({
    ...opts,
    onMessage: (m) => out.push(m),
    onRetry: (ms) => out.push({ retry: ms }),
    onComment: (c) => out.push({ comment: c }),
  });
  for (const c of chunks) p.push(c);
  p.end();
  return { out, lastEventId: p.lastEventId };
}

/** Every way of cutting s in two and in three. */
function cuts(s) {
  const all = [[s]];
  for (let i = 0; i <= s.length; i++) {
    all.push([s.slice(0, i), s.slice(i)]);
    for (let j = i; j <= s.length; j += 3) all.push([s.slice(0, i), s.slice(i, j), s.slice(j)]);
  }
  return all;
}

const STREAM = '\ufeffretry: 3000\n\n: heartbeat 1\nid: 7\nevent: created\ndata: {"code":"E1"}\n\n'
  + 'id: 8\r\nevent: transition\r\ndata: line one\r\ndata:line two\r\ndata:  three\r\n\r\n'
  + ': comment\rdata\rdata: x\r\rid: 9\n\nevent: lonely\n\nid: a\0b\ndata: after-null\n\nretry: soon\nretry: 250\nunknown: field\ndata: last\n\n'
  + 'data: unfinished';

const WANT = [
  { retry: 3000 },
  { comment: 'heartbeat 1' },
  { type: 'created', data: '{"code":"E1"}', lastEventId: '7' },
  { type: 'transition', data: 'line one\nline two\n three', lastEventId: '8' },
  { comment: 'comment' },
  { type: 'message', data: '\nx', lastEventId: '8' },
  { type: 'message', data: 'after-null', lastEventId: '9' },
  { retry: 250 },
  { type: 'message', data: 'last', lastEventId: '9' },
];

test('SSEParser: fields, comments, multi-line data, ids, retry, line ends, BOM', () => {
  const { out, lastEventId } = parse([STREAM]);
  assert.deepEqual(out, WANT);
  assert.equal(lastEventId, '9', 'an id with NUL is ignored; an id alone (no data) still moves it');
});

test('SSEParser: the same messages however the stream is cut', () => {
  for (const chunks of cuts(STREAM)) assert.deepEqual(parse(chunks).out, WANT, JSON.stringify(chunks));
  // One character at a time, CRLF cut in the middle included.
  assert.deepEqual(parse([...STREAM]).out, WANT);
});

test('SSEParser: CR then LF in the next chunk is one line end, not a blank line', () => {
  const { out } = parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(out, [{ type: 'message', data: 'a\nb', lastEventId: '' }]);
});

test('SSEParser: a resumed stream keeps the id it resumed from', () => {
  const { out, lastEventId } = parse(['data: x\n\n'], { lastEventId: '41' });
  assert.deepEqual(out, [{ type: 'message', data: 'x', lastEventId: '41' }]);
  assert.equal(lastEventId, '41');
  assert.deepEqual(parse(['id\n\n']).lastEventId, '', 'an empty id clears it');
});

test('SSEParser: a BOM only at the very start is dropped', () => {
  assert.deepEqual(parse(['', '\ufeffdata: a\n\n', '\ufeffdata: b\n\n']).out,
    [{ type: 'message', data: 'a', lastEventId: '' }]); // "\ufeffdata" is an unknown field
});

/** A server on loopback answering each stream request with the next of
 * answers (a function of the request and response); the requests' headers. */
async function serve(answers) {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push({ ...req.headers });
    const a = answers[Math.min(seen.length - 1, answers.length - 1)];
    a(req, res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/v1/events/stream`;
  return { url, seen, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

const sse = (res) => res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });

/** Resolves when cond() holds (polled every 5 ms), fails after ms. */
async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('FetchEventSource: headers, messages, resume with Last-Event-ID after a drop, then a 401 stops it', async () => {
  const srv = await serve([
    (req, res) => { sse(res); res.end('retry: 40\n\nid: 1\nevent: created\ndata: {"n":1}\n\n: heartbeat\n\nid: 2\nevent: transition\ndata: {"n":2}\n\n'); },
    (req, res) => { sse(res); res.end('id: 3\nevent: created\ndata: {"n":3}\n\nid: 4\n\n'); },
    (req, res) => { res.writeHead(401, { 'Content-Type': 'application/problem+json' }); res.end(JSON.stringify({ status: 401, reason: 'revoked', detail: 'the token was revoked' })); },
  ]);
  try {
    const got = [];
    const refused = [];
    let opens = 0;
    let errors = 0;
    let token = 'gm_first';
    const es = new FetchEventSource(srv.url, { headers: () => ({ Authorization: `Bearer ${token}` }), refusedDelay: 60_000 });
    es.addEventListener('open', () => opens++);
    es.addEventListener('error', () => errors++);
    for (const type of ['created', 'transition']) es.addEventListener(type, (e) => got.push([e.type, e.lastEventId, JSON.parse(e.data).n]));
    es.addEventListener('refused', (e) => refused.push(e));
    await until(() => refused.length === 1, 5000, 'the 401');
    assert.deepEqual(got, [['created', '1', 1], ['transition', '2', 2], ['created', '3', 3]]);
    assert.equal(es.readyState, CLOSED);
    assert.equal(opens, 2);
    assert.ok(errors >= 2, `errors ${errors}`);
    assert.equal(refused[0].status, 401);
    assert.equal(refused[0].problem.reason, 'revoked');
    assert.equal(srv.seen.length, 3);
    assert.equal(srv.seen[0]['last-event-id'], undefined);
    assert.equal(srv.seen[1]['last-event-id'], '2', 'resumes after the last message');
    assert.equal(srv.seen[2]['last-event-id'], '4', 'an id without data moves it too');
    assert.equal(srv.seen[0].authorization, 'Bearer gm_first');
    assert.equal(srv.seen[0].accept, 'text/event-stream');
    token = 'gm_later';
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(srv.seen.length, 3, 'no reconnection after a 401');
  } finally {
    await srv.close();
  }
});

test('FetchEventSource: a refusal (503, not an event stream) is tried again after refusedDelay; 403 stops it', async () => {
  const srv = await serve([
    (req, res) => { res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '1' }); res.end('{"status":503}'); },
    (req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end('<p>a proxy page</p>'); },
    (req, res) => { sse(res); res.write('id: 10\nevent: created\ndata: {"n":10}\n\n'); setTimeout(() => res.destroy(), 20); },
    (req, res) => { res.writeHead(403, { 'Content-Type': 'application/problem+json' }); res.end('{"status":403,"detail":"out of scope"}'); },
  ]);
  try {
    const times = [];
    const got = [];
    const refused = [];
    const started = Date.now();
    const es = new FetchEventSource(srv.url, { lastEventId: 5, retry: 30, refusedDelay: 120 });
    es.addEventListener('open', () => times.push(Date.now() - started));
    es.addEventListener('created', (e) => got.push(e.lastEventId));
    es.addEventListener('refused', (e) => refused.push(e));
    await until(() => refused.length === 1, 5000, 'the 403');
    assert.deepEqual(got, ['10']);
    assert.equal(refused[0].status, 403);
    assert.equal(refused[0].problem.detail, 'out of scope');
    assert.equal(srv.seen[0]['last-event-id'], '5', 'a resumed stream names where it resumes');
    assert.equal(srv.seen[2]['last-event-id'], '5');
    assert.equal(srv.seen[3]['last-event-id'], '10', 'after a cut connection');
    assert.ok(times[0] >= 2 * 120 - 10, `opened after ${times[0]} ms: two refusals should have waited refusedDelay each`);
    assert.equal(es.readyState, CLOSED);
  } finally {
    await srv.close();
  }
});

test('FetchEventSource: a network error is retried; close() stops everything', async () => {
  let calls = 0;
  const fakeFetch = async () => { calls++; throw new TypeError('network down'); };
  const es = new FetchEventSource('/v1/events/stream', { fetch: fakeFetch, retry: 20 });
  let errors = 0;
  es.addEventListener('error', () => errors++);
  await until(() => calls >= 3, 2000, 'three tries');
  es.close();
  const n = calls;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(calls, n, 'no try after close()');
  assert.ok(errors >= 3);
  assert.equal(es.readyState, CLOSED);
});

test('FetchEventSource: close() during an open stream aborts it without reconnecting', async () => {
  const srv = await serve([(req, res) => { sse(res); res.write(': hello\n\n'); }]);
  try {
    const es = new FetchEventSource(srv.url, { retry: 10 });
    let comments = 0;
    es.addEventListener('comment', () => comments++);
    await until(() => comments === 1, 5000, 'the first comment');
    es.close();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(srv.seen.length, 1);
    assert.equal(es.readyState, CLOSED);
  } finally {
    await srv.close();
  }
});
