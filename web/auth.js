// Signing in on a server without public reads: the page's credential (an
// API token, gm_…, or any bearer token the server takes) kept in
// sessionStorage under one key, so it leaves with the tab; the
// Authorization header of every request to this page's origin (and never
// to another); the sign-in panel, shown when the server answers 401 (no
// credential, or one it refuses: unknown, revoked, expired…), which checks
// a token typed in with GET /v1/me before keeping it; who is signed in, and
// signing out.
//
// A server with public reads never asks: the page sends nothing and shows
// no panel. The token is never put in a URL (the stream is read with
// fetch() and the header, sse.js).

const KEY = 'gridmap.token';

/** Why the server refused, in the page's language, by the 401's reason. */
export const REASON_ZH = {
  missing: '此服务器需要登录才能查看地图。',
  malformed: '令牌格式不正确。',
  unknown: '令牌无效：服务器没有签发过这个令牌。',
  revoked: '令牌已被撤销，请使用新的令牌。',
  expired: '令牌已过期，请使用新的令牌。',
  signature: '令牌签名无效。',
  issuer: '令牌的签发方不受信任。',
  audience: '令牌不是签发给本服务器的。',
  'no-grant': '令牌没有任何角色或范围。',
  'no-oidc': '本服务器不接受 OpenID Connect 令牌，请使用 API 令牌。',
};

/** The refusal's text: the reason in Chinese and the server's detail. */
export function refusalText(problem) {
  const p = problem || {};
  const zh = REASON_ZH[p.reason] || (p.status === 403 ? '没有权限。' : '登录被拒绝。');
  return p.detail && p.reason !== 'missing' ? `${zh} (${p.reason || p.status}: ${p.detail})` : zh;
}

/** Whether url (relative to base) is on base's origin. */
export function sameOrigin(url, base) {
  try {
    return new URL(url, base).origin === new URL(base).origin;
  } catch {
    return false;
  }
}

const storage = () => { try { return globalThis.sessionStorage || null; } catch { return null; } };

/** The stored token, or ''. */
export function token() {
  const s = storage();
  return (s && s.getItem(KEY)) || '';
}

function keep(t) {
  const s = storage();
  if (!s) return;
  if (t) s.setItem(KEY, t);
  else s.removeItem(KEY);
}

/** The Authorization header for a request to url: only with a token, and
 * only to this page's origin. */
export function authHeaders(url) {
  const t = token();
  return t && sameOrigin(url, location.href) ? { Authorization: `Bearer ${t}` } : {};
}

// The session: whether the server has asked for a credential, who is
// signed in, and the sign-in under way (a promise that resolves once a
// token is accepted).
const session = { needed: false, actor: '', kind: '', waiting: null, resolve: null, afterSignIn: null, checking: null };

/** The server needs a credential and the page has none: requests would only
 * be refused, so the page makes none until someone signs in. */
export function blocked() {
  return session.needed && !token();
}

/** Whether the sign-in panel is up. */
export function signingIn() {
  return Boolean(session.waiting);
}

/** Once the map is up, what to do after a later sign-in (the page reloads:
 * every tile, list and the stream start again with the new credential). */
export function afterSignIn(fn) {
  session.afterSignIn = fn;
}

/** The server refused the page's credential (or its lack of one) with this
 * 401 problem: forget the token and show the sign-in with the reason.
 * Resolves once someone has signed in. */
export function refused(problem) {
  session.needed = true;
  if (token()) keep('');
  showAccount();
  if (session.waiting) {
    if (problem && problem.reason && problem.reason !== 'missing') showWhy(problem);
    return session.waiting;
  }
  session.waiting = new Promise((resolve) => { session.resolve = resolve; });
  showPanel(problem);
  return session.waiting;
}

/** Resolves when no sign-in is under way. */
export function signedIn() {
  return session.waiting || Promise.resolve();
}

/** load() again until it is not refused for want of a credential: a 401
 * shows the sign-in (the reads are made again once someone has signed
 * in); any other failure is thrown. A page's first reads. */
export async function whenSignedIn(load) {
  for (;;) {
    try {
      return await load();
    } catch (err) {
      if (err.status !== 401) throw err;
      await signedIn();
    }
  }
}

/** GET /v1/me with the token t: {ok, me} or {ok: false, problem}. */
async function whoIs(t) {
  let r;
  try {
    r = await fetch('/v1/me', { headers: { Accept: 'application/json', Authorization: `Bearer ${t}` }, cache: 'no-store' });
  } catch (err) {
    return { ok: false, problem: { detail: `无法连接服务器 (${err.message})` } };
  }
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  return r.ok ? { ok: true, me: body || {} } : { ok: false, problem: body || { status: r.status, detail: r.statusText } };
}

/** On start: a stored token is checked (GET /v1/me) and its actor shown;
 * one the server no longer takes brings the sign-in with the reason.
 * Without a token nothing is asked (a server with public reads needs
 * none; one without says so on the first request). */
export async function start() {
  const t = token();
  if (!t) return;
  const who = await whoIs(t);
  if (who.ok) {
    signedInAs(who.me);
    return;
  }
  if (who.problem && who.problem.status === 401) await refused(who.problem);
}

/** A map request was refused (401): ask /v1/me why, once at a time, and
 * show the sign-in. */
export function check() {
  if (session.waiting || session.checking) return;
  const t = token();
  if (!t) { refused({ reason: 'missing' }); return; }
  session.checking = whoIs(t).then((who) => {
    session.checking = null;
    if (!who.ok && who.problem && who.problem.status === 401 && token() === t) refused(who.problem);
  });
}

function signedInAs(me) {
  session.actor = me.actor || '';
  session.kind = me.kind || '';
  const roles = (me.grants || []).map((g) => `${g.role}${g.scopes && g.scopes.length ? ` @ ${g.scopes.join(',')}` : ''}`).join('; ');
  session.title = [me.kind, roles, me.expires_at ? `至 ${me.expires_at}` : ''].filter(Boolean).join(' · ');
  showAccount();
}

/** Who is signed in, for the page and its tests. */
export function who() {
  return { needed: session.needed, signedIn: Boolean(token()), actor: session.actor, signingIn: signingIn() };
}

// ---- the panel ----

const $ = (id) => document.getElementById(id);

function showWhy(problem) {
  const err = $('signin-error');
  err.textContent = refusalText(problem);
  err.dataset.reason = (problem && problem.reason) || '';
  err.hidden = false;
}

function showPanel(problem) {
  const panel = $('signin');
  const why = $('signin-why');
  const err = $('signin-error');
  why.textContent = REASON_ZH.missing;
  err.hidden = true;
  err.textContent = '';
  if (problem && problem.reason && problem.reason !== 'missing') showWhy(problem);
  panel.hidden = false;
  document.body.dataset.signin = 'open';
  const input = $('signin-token');
  input.value = '';
  setTimeout(() => input.focus(), 0);
}

async function submit(e) {
  e.preventDefault();
  const input = $('signin-token');
  const button = $('signin-submit');
  const t = input.value.trim();
  if (!t) {
    const err = $('signin-error');
    err.textContent = '请输入令牌。';
    err.dataset.reason = '';
    err.hidden = false;
    return;
  }
  button.disabled = true;
  button.textContent = '验证中…';
  const who = await whoIs(t);
  button.disabled = false;
  button.textContent = '登录';
  if (!who.ok) {
    showWhy(who.problem);
    input.select();
    return;
  }
  keep(t);
  input.value = '';
  signedInAs(who.me);
  $('signin').hidden = true;
  delete document.body.dataset.signin;
  const resolve = session.resolve;
  session.waiting = null;
  session.resolve = null;
  if (session.afterSignIn) session.afterSignIn();
  resolve();
}

function showAccount() {
  const box = $('account');
  if (!box) return;
  const on = Boolean(token());
  box.hidden = !on;
  $('account-actor').textContent = on ? session.actor || '已登录' : '';
  box.title = on ? `已登录 signed in: ${session.actor}${session.title ? ` (${session.title})` : ''}` : '';
}

/** Sign out: the token is forgotten and the page starts again. */
export function signOut() {
  keep('');
  location.reload();
}

/** Wires the panel's form and the sign-out control. */
export function wireSignIn() {
  $('signin-form').addEventListener('submit', submit);
  $('signout').addEventListener('click', signOut);
  showAccount();
}
