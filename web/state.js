// The wall map's state: everything the page keeps and changes while it
// runs, in one object that app.js creates and every module is handed (as
// app.state). What stays fixed once the map is up (the map, the style's
// names and colours, the zooms) is on app itself.

export function newState() {
  return {
    // ---- the selection ----
    sel: null, // {code, name, level, geometry}, or null for the whole city
    token: 0, // the latest selection asked for
    shown: 0, // the latest selection drawn
    featureState: null, // the selected unit's feature, which has state `selected`
    names: new Map(), // code → {code, name, level} of every unit seen
    cityCache: null, // the city's overview {at, unit, children, labels}, kept 30 s

    // ---- events live ----
    scope: { code: '', name: '全市' }, // the unit the live panel shows
    live: new Map(), // events created or moved on since the page loaded, by code, least recently changed first
    feed: [], // the latest stream messages, newest first
    recentList: [], // the newest events of the scope, from /v1/events
    stream: { connected: false, received: 0, lastSeq: 0, unitChanges: 0, source: null, transport: '' }, // transport: eventsource, or fetch (with a credential)
    pulses: new Map(), // code → {marker, timer}: the rings on new and moved events
    gridNames: new Map(), // grid codes whose names the ticker asked for
    cityTZ: Intl.DateTimeFormat().resolvedOptions().timeZone, // the city's (/v1/calendar), else the browser's
    tickerToken: 0, // the latest ticker load asked for
    statsToken: 0, // the latest figures load asked for
    liveTimer: 0, // a redraw of gm-live on its way
    unitRedraw: 0, // a redraw of the panel after unit changes on its way
    refresh: {}, // per refreshed source ('events', 'units'): {timer: a refresh on its way, last: when done (ms)}
    statsTimer: 0, // a load of today's figures on its way
    lastStats: 0, // when today's figures were last loaded (ms)
  };
}
