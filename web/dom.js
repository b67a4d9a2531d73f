// The page's small DOM and fetch helpers.

import { authHeaders, blocked, refused, signingIn } from './auth.js';

export const $ = (id) => document.getElementById(id);
export const num = new Intl.NumberFormat('zh-CN');
export const nowSec = () => Math.floor(Date.now() / 1000);
export const unixOf = (t) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);

/** An element with attributes (class, style, data-*, or properties such as
 * onclick) and children; null children are left out. */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

/** GETs JSON, with the page's credential (auth.js); a failure throws with
 * the problem's detail when there is one (err.status, err.problem). A 401
 * brings the sign-in; while the page has no credential a server wants,
 * nothing is asked (it would only be refused). */
export async function getJSON(url, signal) {
  if (blocked()) throw Object.assign(new Error(`${url}: 未登录 (not signed in)`), { status: 401, problem: { status: 401, reason: 'missing' } });
  const r = await fetch(url, { signal, headers: { Accept: 'application/json', ...authHeaders(url) } });
  if (!r.ok) {
    let problem = null;
    try { problem = await r.json(); } catch { /* not problem+json */ }
    const detail = (problem && problem.detail) || r.statusText;
    if (r.status === 401) refused(problem || { status: 401 });
    throw Object.assign(new Error(`${url}: ${r.status} ${detail}`), { status: r.status, problem });
  }
  return r.json();
}

let toastTimer = 0;
/** Shows msg for 8 s (and logs it); while the sign-in is up, what fails
 * fails for want of a credential, which the sign-in says: only logged. */
export function toast(msg) {
  if (signingIn()) { console.warn(msg); return; }
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 8000);
  console.error(msg);
}
