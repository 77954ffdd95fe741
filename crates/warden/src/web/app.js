// Warden's console. Reads /v1/events (server-sent events: `snapshot` every second, `feed` for
// each change); acts through the JSON API with the operator's token. Every value from the
// daemon goes into the page as text (textContent), never as HTML.
"use strict";

const state = { snap: null, rendered: {}, chosen: {}, pending: null, rates: {}, lastCounts: null };
const TOKEN_KEY = "warden-token";

function $(id) { return document.getElementById(id); }

// h("div", {class: "x", "data-id": 1}, child, "text", ...)
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(text, kind) { return h("span", { class: "badge " + kind }, text); }

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!isFinite(s)) return iso;
  if (s < 2) return "just now";
  if (s < 120) return s + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return new Date(iso).toLocaleString();
}

// "monitor_10000" -> "monitor", "monitor_0" -> "probe" (operations carry their interval).
function opLabel(op) {
  const m = /^(.*)_(\d+)$/.exec(op || "");
  if (!m) return op;
  return m[1] === "monitor" && m[2] === "0" ? "probe" : m[1];
}

function toast(text, bad) {
  const t = $("toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 8000 : 4000);
}

// ---- actions ----------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function askToken(then) {
  state.pending = then || null;
  $("token-input").value = "";
  $("token-dialog").showModal();
}

async function act(label, method, path) {
  if (!token()) {
    askToken(() => act(label, method, path));
    return;
  }
  let answer;
  try {
    const r = await fetch(path, { method, headers: { Authorization: "Bearer " + token() } });
    answer = { status: r.status, body: await r.json().catch(() => ({})) };
  } catch (e) {
    toast(label + ": the daemon did not answer (" + e.message + ")", true);
    return;
  }
  if (answer.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    updateTokenButton();
    toast(label + " refused: " + (answer.body.error || "the token is wrong"), true);
  } else if (answer.status >= 400) {
    toast(label + " refused: " + (answer.body.error || "HTTP " + answer.status), true);
  } else {
    toast(label + ": done");
  }
}

function updateTokenButton() {
  $("token-button").textContent = token() ? "Token ✓" : "Token";
}

function enc(s) { return encodeURIComponent(s); }

// ---- rendering --------------------------------------------------------------------------

// Renders a section only when its data changed, so a menu being chosen is not reset.
function section(id, data, draw) {
  const key = JSON.stringify(data);
  if (state.rendered[id] === key) return;
  state.rendered[id] = key;
  $(id).replaceChildren(...draw(data));
}

function nodeWord(n) {
  if (n.unclean) return ["unclean", "bad"];
  if (!n.online) return ["offline", "bad"];
  if (n.standby) return ["standby", "warn"];
  return ["online", "ok"];
}

function drawNodes(status) {
  return status.nodes.map((n) => {
    const [word, kind] = nodeWord(n);
    const actions = n.standby
      ? [h("button", { onclick: () => act("online " + n.name, "POST", "/v1/nodes/" + enc(n.name) + "/online") }, "Online")]
      : [h("button", { onclick: () => act("standby " + n.name, "POST", "/v1/nodes/" + enc(n.name) + "/standby") }, "Standby")];
    return h("div", { class: "item", "data-node": n.name, "data-state": word },
      h("div", { class: "row" }, h("span", { class: "name" }, n.name), badge(word, kind),
        n.name === status.node ? h("span", { class: "muted" }, "(this node)") : null,
        n.name === status.coordinator ? h("span", { class: "muted" }, "coordinator") : null),
      n.unclean ? h("div", { class: "failure" }, "must be fenced: " + n.unclean) : null,
      h("div", { class: "actions" }, actions));
  });
}

const STATE_KIND = { started: "ok", stopped: "idle", failed: "bad", blocked: "bad" };

function drawResources(d) {
  const { status } = d;
  if (!status.resources.length) return [h("p", { class: "muted" }, "No resources configured.")];
  return status.resources.map((r) => {
    const failures = status.failed_actions.filter((f) => f.resource === r.id);
    const last = failures.slice().sort((a, b) => (a.time < b.time ? 1 : -1))[0];
    const where = r.instances.length
      ? r.instances.map((i) => i.role === "started" ? i.node : i.node + " (" + i.role + ")").join(", ")
      : "nowhere";
    const counts = Object.entries(r.fail_counts || {});
    const id = enc(r.id);
    const chooser = h("select", { "aria-label": "node for " + r.id, onchange: (e) => { state.chosen[r.id] = e.target.value; } },
      status.nodes.map((n) => h("option", { value: n.name, selected: state.chosen[r.id] === n.name }, n.name)));
    const node = () => chooser.value;
    const disabled = r.target_role === "stopped";
    return h("div", { class: "item", "data-resource": r.id, "data-state": r.state },
      h("div", { class: "row" },
        h("span", { class: "name" }, r.id), badge(r.state, STATE_KIND[r.state] || "idle"),
        h("span", { class: "muted" }, r.agent), h("span", {}, "on " + where)),
      counts.length ? h("div", { class: "muted", "data-fail-counts": "" },
        "fail counts: " + counts.map(([n, c]) => n + " " + c).join(", ")) : null,
      last ? h("div", { class: "failure", "data-last-failure": "" },
        "last failure: " + opLabel(last.op) + " on " + last.node + ": " + last.rc_name +
        (last.exit_reason ? " (" + last.exit_reason + ")" : "") + ", " + ago(last.time)) : null,
      r.start_delayed_until ? h("div", { class: "muted" }, "crash loop: next start after " + new Date(r.start_delayed_until).toLocaleTimeString()) : null,
      r.moved_to || (r.banned && r.banned.length) || disabled
        ? h("div", { class: "muted" }, [disabled ? "disabled" : null,
          r.moved_to ? "moved to " + r.moved_to : null,
          r.banned && r.banned.length ? "banned from " + r.banned.join(", ") : null].filter(Boolean).join("; "))
        : null,
      h("div", { class: "actions" },
        h("button", { onclick: () => act("cleanup " + r.id, "POST", "/v1/resources/" + id + "/cleanup") }, "Cleanup"),
        h("button", { onclick: () => act("restart " + r.id, "POST", "/v1/resources/" + id + "/restart") }, "Restart"),
        disabled
          ? h("button", { onclick: () => act("enable " + r.id, "POST", "/v1/resources/" + id + "/enable") }, "Enable")
          : h("button", { onclick: () => act("disable " + r.id, "POST", "/v1/resources/" + id + "/disable") }, "Disable"),
        chooser,
        h("button", { onclick: () => act("move " + r.id, "POST", "/v1/resources/" + id + "/move?node=" + enc(node())) }, "Move"),
        h("button", { onclick: () => act("ban " + r.id, "POST", "/v1/resources/" + id + "/ban?node=" + enc(node())) }, "Ban"),
        h("button", { onclick: () => act("clear " + r.id, "POST", "/v1/resources/" + id + "/clear") }, "Clear")));
  });
}

const PEER_KIND = { UP: "ok", DOWN: "bad", UNKNOWN: "idle" };

// This node's upstreams (with actions), then each other node's as it last published them.
function drawAllUpstreams(d) {
  const out = drawUpstreams(d.mine, true);
  for (const [node, v] of Object.entries(d.elsewhere)) {
    out.push(h("h3", { class: "elsewhere", "data-node-view": node }, "on " + node + " · " + ago(v.time)));
    out.push(...drawUpstreams(v.upstreams, false));
  }
  return out;
}

function drawAllListeners(d) {
  const out = drawListeners(d.mine);
  for (const [node, v] of Object.entries(d.elsewhere)) {
    out.push(h("h3", { class: "elsewhere" }, "on " + node + " · " + ago(v.time)));
    out.push(...drawListeners(v.listeners));
  }
  return out;
}

function drawUpstreams(upstreams, actions) {
  if (!upstreams.length) return [h("p", { class: "muted" }, "No upstreams.")];
  return upstreams.map((u) => h("div", { class: "item", "data-upstream": u.name },
    h("div", { class: "row" }, h("span", { class: "name" }, u.name), h("span", { class: "muted" }, "version " + u.version)),
    u.peers.map((p) => {
      const path = "/v1/upstreams/" + enc(u.name) + "/peers/";
      const addr = "?addr=" + enc(p.addr);
      const mark = actions ? { "data-peer": p.addr } : { "data-remote-peer": p.addr };
      return h("div", { class: "item", ...mark, "data-state": p.state },
        h("div", { class: "row" }, h("span", {}, p.addr), badge(p.state, PEER_KIND[p.state] || "idle"),
          h("span", { class: "muted" }, p.role), p.drained ? badge("drained", "warn") : null,
          h("span", { class: "muted" }, "checked " + ago(p.last_check))),
        p.last_error ? h("div", { class: "failure" }, p.last_error) : null,
        actions && h("div", { class: "actions" }, p.drained
          ? h("button", { onclick: () => act("undrain " + p.addr, "POST", path + "undrain" + addr) }, "Undrain")
          : h("button", { onclick: () => act("drain " + p.addr, "POST", path + "drain" + addr) }, "Drain")));
    })));
}

function drawListeners(listeners) {
  if (!listeners.length) return [h("p", { class: "muted" }, "No listeners.")];
  return listeners.map((l) => {
    const rate = state.rates[l.name];
    const answers = Object.entries(l.proxy_responses_total).map(([c, n]) => c + ": " + n).join(", ");
    return h("div", { class: "item", "data-listener": l.name },
      h("div", { class: "row" }, h("span", { class: "name" }, l.name)),
      h("div", { class: "stats" },
        h("div", {}, h("b", {}, l.sessions), "open"),
        h("div", {}, h("b", {}, rate === undefined ? "…" : rate.toFixed(1)), "requests/s"),
        h("div", {}, h("b", {}, l.requests_total), "requests"),
        h("div", {}, h("b", {}, l.failovers_total), "failovers"),
        h("div", {}, h("b", {}, l.failed_attempts_total), "failed attempts")),
      answers ? h("div", { class: "muted" }, "answered by the proxy: " + answers) : null);
  });
}

function drawConstraints(status) {
  const c = status.constraints;
  const lines = [];
  for (const l of c.locations) lines.push("location: " + l.resource + " prefers " + l.node + " (" + l.score + (l.role !== "started" ? ", " + l.role : "") + ")");
  for (const l of c.colocations) lines.push("colocation: " + l.resource + " with " + l.with + " (" + l.score + ")");
  for (const g of c.groups) lines.push("group " + g.id + ": " + g.resources.join(" → "));
  const inGroup = new Set(c.groups.flatMap((g) => g.resources.slice(1).map((r, i) => g.resources[i] + ">" + r)));
  for (const o of c.orders) {
    if (inGroup.has(o.first + ">" + o.then)) continue;
    lines.push("order: " + o.first + " " + o.first_action + " then " + o.then + " " + o.then_action + " (" + o.kind + ")");
  }
  for (const r of status.resources) {
    if (r.moved_to) lines.push("move: " + r.id + " to " + r.moved_to + " (operator)");
    for (const n of r.banned || []) lines.push("ban: " + r.id + " from " + n + " (operator)");
  }
  if (!lines.length) return [h("p", { class: "muted" }, "No constraints.")];
  return lines.map((t) => h("div", { class: "item" }, t));
}

function updateRates(listeners, time) {
  const now = Date.parse(time);
  const counts = Object.fromEntries(listeners.map((l) => [l.name, l.requests_total + (l.requests_total ? 0 : l.sessions_total)]));
  if (state.lastCounts && now > state.lastCounts.time) {
    const secs = (now - state.lastCounts.time) / 1000;
    for (const [name, n] of Object.entries(counts)) {
      const before = state.lastCounts.counts[name];
      if (before !== undefined) state.rates[name] = Math.max(0, n - before) / secs;
    }
  }
  state.lastCounts = { time: now, counts };
}

function render(snap) {
  state.snap = snap;
  const s = snap.status;
  $("cluster").textContent = s.cluster;
  $("seen-from").textContent = "node " + s.node;
  $("coordinator").textContent = s.coordinator ? "coordinator " + s.coordinator : "";
  $("upstreams-node").textContent = "on " + s.node;
  $("listeners-node").textContent = "on " + s.node;
  const w = $("warnings");
  w.hidden = !s.warnings.length;
  w.textContent = s.warnings.join(" · ");
  updateRates(snap.listeners, s.time);
  section("nodes", s, drawNodes);
  section("resources", { status: { resources: s.resources, failed_actions: s.failed_actions, nodes: s.nodes } }, drawResources);
  // Peers' check times change each check: drawn each time (no menu inside).
  const elsewhere = snap.elsewhere || {};
  state.rendered.upstreams = null;
  section("upstreams", { mine: snap.upstreams, elsewhere }, drawAllUpstreams);
  state.rendered.listeners = null;
  section("listeners", { mine: snap.listeners, elsewhere }, drawAllListeners);
  section("constraints", { constraints: s.constraints, resources: s.resources }, drawConstraints);
}

function feed(item) {
  const list = $("feed");
  const t = new Date(item.time);
  list.prepend(h("li", { class: item.level, "data-kind": item.kind },
    h("time", { datetime: item.time }, isFinite(t) ? t.toLocaleTimeString() : item.time),
    h("span", {}, item.text)));
  while (list.children.length > 300) list.lastChild.remove();
}

// ---- the stream -------------------------------------------------------------------------

function connect() {
  const es = new EventSource("/v1/events");
  es.addEventListener("open", () => { $("live").className = "live on"; $("live").textContent = "live"; });
  es.addEventListener("snapshot", (e) => {
    $("live").className = "live on";
    $("live").textContent = "live";
    render(JSON.parse(e.data));
  });
  es.addEventListener("feed", (e) => feed(JSON.parse(e.data)));
  es.addEventListener("error", () => {
    // EventSource reconnects by itself; say that the page is not live meanwhile.
    $("live").className = "live off";
    $("live").textContent = "reconnecting";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  updateTokenButton();
  $("token-button").addEventListener("click", () => askToken(null));
  $("token-dialog").addEventListener("close", () => {
    const how = $("token-dialog").returnValue;
    const then = state.pending;
    state.pending = null;
    if (how === "ok" && $("token-input").value.trim()) {
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      updateTokenButton();
      if (then) then();
    } else if (how === "forget") {
      sessionStorage.removeItem(TOKEN_KEY);
      updateTokenButton();
    } else if (then) {
      toast("Not done: actions need the token", true);
    }
  });
  connect();
});
