// Warden operator console. Plain JavaScript, no dependencies, no build step (docs/adr/0100).
// It talks only to Warden's HTTP API with the session cookie; every state change carries the
// CSRF token. Text from the server is always set with textContent, never parsed as HTML.
"use strict";

const STATE = { session: null, seenApprovals: new Set(), firstApprovals: true };

// -- small helpers -----------------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return node;
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

class APIError extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "";
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const opts = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("warden_csrf");
  const response = await fetch(path, opts);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (response.status === 401) {
    location.assign("/console/login");
    throw new APIError(401, data);
  }
  if (!response.ok) throw new APIError(response.status, data);
  return data;
}

function when(ts) {
  if (ts === null || ts === undefined || ts === "") return "";
  return new Date(Number(ts) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function ago(ts) {
  if (!ts) return "";
  const s = Math.round(Date.now() / 1000 - Number(ts));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function json(value) {
  return h("pre", { text: JSON.stringify(value, null, 2) });
}

function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [label, value] of pairs) {
    if (value === undefined) continue;
    dl.append(h("dt", { text: label }), h("dd", {}, value === null ? "" : value));
  }
  return dl;
}

function grid(columns, rows, onclick) {
  const table = h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { text: c })))));
  const body = h("tbody");
  for (const row of rows) {
    const tr = h("tr", { class: onclick ? "clickable" : null }, row.cells.map((c) => h("td", {}, c)));
    if (onclick) tr.addEventListener("click", () => onclick(row));
    if (row.id) tr.dataset.id = row.id;
    body.append(tr);
  }
  table.append(body);
  return table;
}

function flash(message, ok = false) {
  const box = document.getElementById("flash");
  box.replaceChildren(h("p", { class: ok ? "ok" : "error", text: message }));
}

function content(...nodes) {
  document.getElementById("content").replaceChildren(...nodes);
}

function decisionClass(d) {
  return d === "allow" ? "allow" : "deny";
}

const can = {
  decide: () => ["admin", "approver"].includes(STATE.session.role),
  act: () => STATE.session.role === "admin",
};

function stream(path, onRecord) {
  const source = new EventSource(path);
  source.addEventListener("record", (e) => onRecord(JSON.parse(e.data)));
  return source;
}

// -- approvals ---------------------------------------------------------------------------------
async function refreshBadge() {
  const data = await api("/v1/approvals?status=pending&limit=1000");
  const badge = document.getElementById("badge");
  badge.textContent = String(data.approvals.length);
  badge.hidden = data.approvals.length === 0;
  const fresh = data.approvals.filter((a) => !STATE.seenApprovals.has(a.id));
  for (const a of data.approvals) STATE.seenApprovals.add(a.id);
  if (!STATE.firstApprovals && fresh.length) notify(fresh);
  STATE.firstApprovals = false;
  return data.approvals;
}

function notify(fresh) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  for (const a of fresh) {
    new Notification(`Approval needed: ${a.action}`, {
      body: `${a.agent} (owner ${a.owner}) asks to run ${a.action}`,
      tag: a.id,
    });
  }
}

function countdown(ts) {
  // one ticker (below) updates every countdown on the page, so removed cards leave nothing behind
  const node = h("span", { class: "mono countdown", "data-ts": String(ts) });
  tickCountdowns();
  return node;
}

function tickCountdowns() {
  for (const node of document.querySelectorAll(".countdown")) {
    const left = Math.round(Number(node.dataset.ts) - Date.now() / 1000);
    node.textContent = left > 0 ? `in ${Math.floor(left / 60)}m ${left % 60}s` : "now";
  }
}
setInterval(tickCountdowns, 1000);

async function approvalCard(a) {
  let task = null;
  try {
    task = await api(`/v1/tasks/${encodeURIComponent(a.task_id)}`);
  } catch (e) {
    task = null;
  }
  const deciders = a.chain.map((level, i) =>
    h("span", { class: i === a.level - 1 ? "pill ok" : "pill", text: level }));
  const card = h("section", { class: "card approval", "data-id": a.id },
    h("h3", {}, h("span", { class: "mono", text: a.action }), " on ",
      h("span", { class: "mono", text: `${a.resource.type}:${a.resource.id}` })),
    kv([
      ["agent", a.agent],
      ["owner", a.owner],
      ["task", h("span", { class: "mono", text: a.task_id })],
      ["purpose", task ? `${task.purpose} (${task.category || "uncategorised"})` : ""],
      ["on behalf of", a.on_behalf_of || ""],
      ["arguments", json(a.arguments)],
      ["asked by policy", a.policies.join(", ")],
      ["bound to digest", h("span", { class: "mono", text: a.digest })],
      ["who may decide", h("span", {}, deciders,
        a.separation_of_duties ? " (separation of duties)" : "")],
      ["escalates", a.escalate_at ? countdown(a.escalate_at) : "no escalation"],
      ["expires", a.expires_at ? when(a.expires_at) : ""],
      ["requested", `${when(a.created_at)} (${ago(a.created_at)})`],
    ]));
  if (can.decide()) {
    const reason = h("input", { type: "text", placeholder: "reason (required to deny)",
      "aria-label": "reason" });
    const decide = async (verb) => {
      try {
        await api(`/v1/approvals/${encodeURIComponent(a.id)}/${verb}`, {
          method: "POST", body: { reason: reason.value, digest: a.digest } });
        flash(`${verb === "approve" ? "approved" : "denied"} ${a.action} for ${a.agent}`, true);
        await showApprovals();
      } catch (e) {
        flash(`${e.code || "error"}: ${e.message}`);
      }
    };
    card.append(h("div", { class: "actions" }, reason,
      h("button", { class: "primary", onclick: () => decide("approve"), text: "Approve" }),
      h("button", { class: "danger", onclick: () => decide("deny"), text: "Deny" })));
  }
  return card;
}

async function showApprovals() {
  // cards still pending stay as they are (a reason being typed survives a push); new ones are
  // added, decided ones removed
  const pending = await refreshBadge();
  let list = document.getElementById("pending");
  if (!list) {
    const nodes = [];
    if ("Notification" in window && Notification.permission === "default") {
      nodes.push(h("p", {}, h("button", { onclick: () => Notification.requestPermission(),
        text: "Notify me of new requests" })));
    }
    list = h("div", { id: "pending" });
    nodes.push(h("p", { class: "muted", id: "pending-count" }), list, h("div", { id: "recent" }));
    content(...nodes);
  }
  document.getElementById("pending-count").textContent =
    `${pending.length} pending request${pending.length === 1 ? "" : "s"}`;
  const ids = new Set(pending.map((a) => a.id));
  for (const card of [...list.children]) if (!ids.has(card.dataset.id)) card.remove();
  const shown = new Set([...list.children].map((c) => c.dataset.id));
  for (const a of pending) {
    if (!shown.has(a.id)) list.prepend(await approvalCard(a));
  }
  const recent = await api("/v1/approvals?limit=10&status=approved");
  const box = document.getElementById("recent");
  box.replaceChildren();
  if (recent.approvals.length) {
    box.append(h("h2", { text: "Recently approved" }), grid(["request", "action", "agent", "by", "used"],
      recent.approvals.map((a) => ({ cells: [h("span", { class: "mono", text: a.id }), a.action,
        a.agent, a.decided_by || "", a.used ? "yes" : "no"] }))));
  }
}

// -- agents ------------------------------------------------------------------------------------
async function cascadePreview(agent) {
  const tasks = (await api(`/v1/tasks?agent=${encodeURIComponent(agent.name)}&status=active&limit=1000`)).tasks;
  const approvals = (await api(`/v1/approvals?status=pending&agent=${encodeURIComponent(agent.name)}&limit=1000`)).approvals;
  let subtasks = 0;
  let leases = 0;
  for (const t of tasks) {
    try {
      subtasks += (await api(`/v1/tasks/${encodeURIComponent(t.id)}/subtasks`)).tasks.length;
    } catch (e) { /* a task that just ended */ }
    try {
      leases += (await api(`/v1/tasks/${encodeURIComponent(t.id)}/leases`)).leases.filter((l) => l.state !== "revoked").length;
    } catch (e) { /* leases need an admin: counted as unknown */ }
  }
  return { tasks, subtasks, leases, approvals };
}

function confirmDialog(title, body, confirmText) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { id: "confirm" }, h("h2", { text: title }), body,
      h("div", { class: "actions" },
        h("button", { class: "danger", id: "confirm-yes", text: confirmText,
          onclick: () => { dialog.close(); dialog.remove(); resolve(true); } }),
        h("button", { text: "Cancel", onclick: () => { dialog.close(); dialog.remove(); resolve(false); } })));
    document.body.append(dialog);
    dialog.showModal();
  });
}

async function suspendAgent(agent) {
  const preview = await cascadePreview(agent);
  const ok = await confirmDialog(`Suspend ${agent.name}?`, h("div", {},
    h("p", { text: "Every later request from this agent is denied. Suspending ends at once:" }),
    kv([
      ["live tasks", String(preview.tasks.length)],
      ["delegated subtasks", String(preview.subtasks)],
      ["task credentials", "every credential of those tasks"],
      ["leases (downstream secrets)", String(preview.leases)],
      ["pending approvals", String(preview.approvals.length)],
    ]),
    preview.tasks.length ? h("ul", {}, preview.tasks.map((t) => h("li", { class: "mono", text: `${t.id} — ${t.purpose}` }))) : null),
    "Suspend");
  if (!ok) return;
  const started = performance.now();
  try {
    const result = await api(`/v1/agents/${encodeURIComponent(agent.name)}/suspend`,
      { method: "POST", body: { reason: "suspended from the console" } });
    const answered = performance.now() - started;
    // this replica's memory, as `warden agents suspend --wait` checks each one: suspended, and
    // no task left. The page can only reach the replica that serves it (CSP: 'self').
    let seen = null;
    for (let i = 0; i < 50 && seen === null; i++) {
      const here = await api(`/v1/replica/agents/${encodeURIComponent(agent.name)}`).catch(() => null);
      if (here && here.status === "suspended" && here.active_tasks === 0) seen = performance.now() - started;
      else await new Promise((r) => setTimeout(r, 100));
    }
    const live = (await api("/v1/replicas").catch(() => ({ replicas: [] }))).replicas.length;
    const others = live > 1 ? `; ${live - 1} other replica(s): \`warden agents suspend --wait\` times each` : "";
    flash(`suspended ${agent.name}: ${result.tasks_ended} task(s) ended, ${result.leases.revoked} lease(s) revoked; ` +
      `cascade ${result.cascade_ms} ms on the server, answered in ${answered.toFixed(0)} ms, ` +
      `this replica denies it after ${seen === null ? "?" : seen.toFixed(0)} ms${others}`, true);
  } catch (e) {
    flash(`${e.code || "error"}: ${e.message}`);
  }
  await showAgents();
}

async function reactivateAgent(agent) {
  try {
    await api(`/v1/agents/${encodeURIComponent(agent.name)}/reactivate`,
      { method: "POST", body: { reason: "reactivated from the console" } });
    flash(`reactivated ${agent.name}`, true);
  } catch (e) {
    flash(`${e.code || "error"}: ${e.message}`);
  }
  await showAgents();
}

async function showAgents() {
  const agents = (await api("/v1/agents?limit=1000")).agents;
  const findings = (await api("/v1/findings?limit=1000").catch(() => ({ findings: [] }))).findings || [];
  const live = (await api("/v1/tasks?status=active&limit=1000")).tasks;
  const rows = [];
  for (const a of agents) {
    const mine = live.filter((t) => t.agent === a.name);
    const last = mine.reduce((m, t) => Math.max(m, t.created_at), a.updated_at || a.created_at);
    const count = findings.filter((f) => f.agent === a.name).length;
    const buttons = h("span", { class: "actions" });
    if (can.act() && a.status === "active") {
      buttons.append(h("button", { class: "danger", "data-action": "suspend", text: "Suspend",
        onclick: (e) => { e.stopPropagation(); suspendAgent(a); } }));
    }
    if (can.act() && a.status === "suspended") {
      buttons.append(h("button", { "data-action": "reactivate", text: "Reactivate",
        onclick: (e) => { e.stopPropagation(); reactivateAgent(a); } }));
    }
    rows.push({ id: a.name, cells: [
      h("strong", { text: a.name }), a.owner,
      h("span", { class: a.status === "active" ? "allow" : "deny", text: a.status }),
      a.risk_tier, h("span", { class: "mono", text: a.entitlements.join(" ") }),
      String(mine.length), ago(last), count ? h("span", { class: "warn", text: String(count) }) : "0",
      buttons,
    ] });
  }
  content(grid(["agent", "owner", "status", "risk", "entitlements", "live tasks", "last activity",
    "findings", ""], rows, (row) => location.assign(`/console/decisions?agent=${encodeURIComponent(row.id)}`)));
}

// -- live decisions ----------------------------------------------------------------------------
const DECISION_FILTERS = ["agent", "decision", "tool", "policy", "reason"];

// The reason code the PEP was given, from a decision's audit record: the same rule as the
// server's (core/reasons.py recorded_reason) — a refusal records its code, a decision of
// policy is allowed, policy, or the code of its step-up.
const ASKED = { denied: "approval_denied", rate_limited: "approval_rate_limited",
  unavailable: "approval_unavailable", undigestable: "approval_unavailable" };

function reasonCode(d) {
  if (typeof d.reason === "string") return d.reason;
  if (d.decision === "allow") return "allowed";
  const a = d.approval || {};
  if (a.required) return ASKED[a.outcome] || "approval_required";
  return a.outcome === "used" ? "approval_used" : "policy";
}

function reasonOf(data) {  // what the reason filter matches: the code, its detail, the policies
  return [reasonCode(data), data.detail || "", ...(data.reasons || [])].join(" ");
}

function decisionRow(rec) {
  const d = rec.data;
  return { id: rec.decision_id, cells: [
    when(rec.ts), h("span", { class: decisionClass(d.decision), text: d.decision }),
    rec.agent || rec.actor, h("span", { class: "mono", text: d.action }),
    h("span", { class: "mono", text: (d.reasons || []).join(", ") }),
    h("span", { class: "mono reason", title: d.detail || "", text: reasonCode(d) }),
    d.monitor ? "monitor" : "enforce",
  ] };
}

async function showDecisions() {
  const params = new URLSearchParams(location.search);
  const inputs = {};
  const form = h("form", { class: "filters", id: "filters" });
  for (const name of DECISION_FILTERS) {
    const input = name === "decision"
      ? h("select", { name, "aria-label": name }, ["", "allow", "deny"].map((v) => h("option", { value: v, text: v || "any decision" })))
      : h("input", { name, placeholder: name, "aria-label": name });
    input.value = params.get(name) || "";
    inputs[name] = input;
    form.append(input);
  }
  form.append(h("button", { type: "submit", class: "primary", text: "Apply" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const name of DECISION_FILTERS) if (inputs[name].value) next.set(name, inputs[name].value);
    location.assign(`/console/decisions?${next}`);
  });
  const table = grid(["time", "decision", "agent", "tool", "policies", "reason", "mode"], [],
    (row) => location.assign(`/console/decisions/${encodeURIComponent(row.id)}`));
  table.id = "decisions";
  const tbody = table.querySelector("tbody");
  const status = h("p", { class: "muted", text: "live — new decisions appear at the top" });
  content(form, status, table);
  const query = new URLSearchParams({ type: "authz.decision", backlog: "100" });
  for (const name of ["agent", "decision", "tool", "policy"]) if (params.get(name)) query.set(name, params.get(name));
  const reason = (params.get("reason") || "").toLowerCase();
  stream(`/v1/audit/stream?${query}`, (rec) => {
    if (reason && !reasonOf(rec.data).toLowerCase().includes(reason)) return;
    const row = decisionRow(rec);
    const tr = h("tr", { class: "clickable", "data-id": row.id }, row.cells.map((c) => h("td", {}, c)));
    tr.addEventListener("click", () => location.assign(`/console/decisions/${encodeURIComponent(row.id)}`));
    tbody.prepend(tr);
    while (tbody.children.length > 500) tbody.lastChild.remove();
  });
}

// -- decision detail ("why") -------------------------------------------------------------------
function verification(v) {
  const pill = (ok, yes, no) => h("span", { class: ok === true ? "pill ok" : ok === false ? "pill bad" : "pill",
    text: ok === true ? yes : ok === false ? no : "n/a" });
  const cp = v.checkpoint || {};
  return kv([
    ["overall", pill(v.ok, "verified", "BROKEN")],
    ["record hash", pill(v.record_hash, "matches its content", "does not match")],
    ["link to previous", pill(v.links_previous, "intact", "broken")],
    ["link to next", pill(v.links_next, "intact", "broken")],
    ["signed checkpoint", cp.seq ? h("span", {}, pill(cp.ok, `reaches checkpoint at seq ${cp.seq}`, "fails"),
      cp.note ? ` ${cp.note}` : "") : cp.note || ""],
  ]);
}

function approvalSummary(a) {
  const r = a.record || {};
  return kv([
    ["outcome", a.outcome || (a.required ? "required" : "")],
    ["request", h("span", { class: "mono", text: a.request_id || "" })],
    ["status", r.status ? `${r.status}${r.used ? " (used)" : ""}` : ""],
    ["asked by policy", (a.policies || r.policies || []).join(", ")],
    ["bound to digest", h("span", { class: "mono", text: r.digest || a.digest || "" })],
    ["decided by", r.decided_by ? `${r.decided_by} at ${when(r.decided_at)}: ${r.decision_reason || ""}` : ""],
  ]);
}

async function showDecision() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  let why;
  try {
    why = await api(`/v1/audit/decisions/${encodeURIComponent(id)}`);
  } catch (e) {
    content(h("p", { class: "error", text: `${e.code || "error"}: ${e.message}` }));
    return;
  }
  document.getElementById("title").textContent = `Decision ${id}`;
  const cred = why.credential || {};
  const nodes = [
    h("section", { class: "card", id: "why" },
      h("h2", {}, h("span", { class: decisionClass(why.decision), text: why.decision.toUpperCase() }), " — ",
        h("span", { class: "mono", id: "reason-code", text: why.reason_code })),
      kv([
        ["reason", h("span", { id: "reason", text: why.reason })],
        ["determining policies", h("span", { class: "mono", id: "reasons",
          text: why.reasons.length ? why.reasons.join(", ") : "none" })],
        ["when", when(why.ts)],
        ["agent", why.agent || why.actor],
        ["mode", why.mode + (why.monitor ? ` (enforcement would answer ${why.monitor.reason}: ` +
          `${(why.monitor.policies || []).join(", ") || "no policy"})` : "")],
        ["policy revision", h("span", { class: "mono", text: (why.policy_revision || "").slice(0, 16) +
          (why.policy_revision && why.policy_revision !== why.serving_revision ? " (the set has changed since)" : "") })],
        ["errors", why.errors.length ? json(why.errors) : "none"],
      ])),
    h("h2", { text: "Determining policies" }),
  ];
  if (!why.policies.length) nodes.push(h("p", { class: "muted", text: "no policy: " + why.reason }));
  for (const p of why.policies) {
    nodes.push(h("section", { class: "card policy", "data-policy": p.id },
      h("h3", {}, h("span", { class: "mono", text: p.id }), " ",
        p.loaded ? h("span", { class: "muted", text: `${p.effect} · ${p.mode} · ` }) : null,
        p.loaded ? h("span", { class: "mono source-location", text: `${p.file}:${p.line ?? "?"}${p.column ? ":" + p.column : ""}` })
          : h("span", { class: "warn", text: "no longer loaded" })),
      p.text ? h("pre", { class: "policy-text", text: p.text }) : null));
  }
  nodes.push(
    h("h2", { text: "Request as the PEP sent it (masked)" }), json(why.request),
    h("h2", { text: "Credential and delegation chain" }),
    kv([
      ["credential (jti)", h("span", { class: "mono", text: cred.jti || "none" })],
      ["task", cred.task ? h("span", {}, h("span", { class: "mono", text: cred.task.id }), ` — ${cred.task.purpose} (${cred.task.status})`) : why.task_id || "none"],
      ["on behalf of", cred.task ? cred.task.on_behalf_of || "" : ""],
      ["chain", h("ol", {}, (cred.chain || []).map((c) => h("li", { class: "mono", text: c })))],
    ]),
    h("h2", { text: "Approval" }),
    why.approval ? approvalSummary(why.approval) : h("p", { class: "muted", text: "none" }),
    h("h2", { text: "Audit record" }),
    kv([
      ["position", `seq ${why.audit.seq} of ${why.audit.head_seq}`],
      ["hash", h("span", { class: "mono", text: why.audit.hash })],
      ["previous hash", h("span", { class: "mono", text: why.audit.prev_hash })],
    ]),
    verification(why.audit.verification),
  );
  if (why.related.length) {
    nodes.push(h("h2", { text: "Related records" }), grid(["seq", "type", "actor"],
      why.related.map((r) => ({ cells: [String(r.seq), r.type, r.actor] }))));
  }
  content(...nodes);
}

// -- tasks -------------------------------------------------------------------------------------
async function taskTree(task) {
  const story = await api(`/v1/audit/tasks/${encodeURIComponent(task.id)}/story`).catch(() => null);
  const node = (s) => h("li", {}, h("span", { class: "mono", text: s.task.id }),
    ` ${s.task.agent} — ${s.task.purpose} `, h("span", { class: "pill", text: s.task.status }),
    ` ${s.decisions.length} decision(s)`,
    s.subtasks.length ? h("ul", { class: "tree" }, s.subtasks.map(node)) : null);
  return story ? h("ul", { class: "tree" }, node(story)) : h("p", { class: "muted", text: "story needs the auditor role" });
}

async function showTasks() {
  const live = (await api("/v1/tasks?status=active&limit=200")).tasks;
  const all = (await api("/v1/tasks?limit=200")).tasks;
  const ended = all.filter((t) => t.status !== "active");
  const detail = h("div", { id: "task-detail" });
  const rows = (list) => list.map((t) => ({ id: t.id, task: t, cells: [
    h("span", { class: "mono", text: t.id }), t.agent, t.purpose, t.status,
    t.parent_id ? h("span", { class: "mono", text: t.parent_id }) : "", String(t.depth), when(t.created_at),
    t.ended_at ? `${when(t.ended_at)} ${t.end_reason || ""}` : `expires ${when(t.expires_at)}`,
  ] }));
  const open = async (row) => detail.replaceChildren(h("h2", { text: `Delegation tree of ${row.id}` }), await taskTree(row.task));
  const cols = ["task", "agent", "purpose", "status", "parent", "depth", "started", "end"];
  content(h("h2", { text: `Live (${live.length})` }), grid(cols, rows(live), open),
    h("h2", { text: `Ended (${ended.length})` }), grid(cols, rows(ended), open), detail);
}

// -- certification -----------------------------------------------------------------------------
async function decideReview(review, decision) {
  try {
    await api(`/v1/certifications/reviews/${encodeURIComponent(review.id)}/${decision}`, { method: "POST", body: {} });
    flash(`${decision}: ${review.agent}`, true);
  } catch (e) {
    flash(`${e.code || "error"}: ${e.message}`);
  }
  await showCertification();
}

async function showCertification() {
  const campaigns = (await api("/v1/certifications?limit=20")).campaigns;
  const nodes = [];
  if (can.act()) {
    nodes.push(h("p", {}, h("button", { class: "primary", text: "Start a campaign", onclick: async () => {
      try { await api("/v1/certifications", { method: "POST", body: {} }); flash("campaign started", true); }
      catch (e) { flash(`${e.code || "error"}: ${e.message}`); }
      await showCertification();
    } })));
  }
  if (!campaigns.length) nodes.push(h("p", { class: "muted", text: "no certification campaign yet" }));
  for (const c of campaigns) {
    const full = await api(`/v1/certifications/${encodeURIComponent(c.id)}`);
    nodes.push(h("h2", { text: `Campaign ${c.id} — ${c.status}, deadline ${when(c.deadline)}` }));
    nodes.push(grid(["agent", "owner", "entitlements", "used", "unused", "status", ""], full.reviews.map((r) => {
      const buttons = h("span", { class: "actions" });
      if (can.decide() && r.status === "pending") {
        for (const d of ["keep", "reduce", "revoke"]) {
          buttons.append(h("button", { class: d === "revoke" ? "danger" : "", text: d, onclick: () => decideReview(r, d) }));
        }
      }
      return { cells: [r.agent, r.owner, r.entitlements.join(" "), r.used.join(" "), r.unused.join(" "),
        r.status + (r.decided_by ? ` by ${r.decided_by}` : ""), buttons] };
    })));
  }
  content(...nodes);
}

// -- policies ----------------------------------------------------------------------------------
// The last rejected change: each located error (file:line:column, message, the offending line),
// or the bare message when the change failed before any file was read.
function policyError(summary, errors) {
  if (!summary && !(errors || []).length) {
    return h("p", { class: "muted", id: "last-error", text: "no rejected change since the server started" });
  }
  if (!(errors || []).length) return h("pre", { class: "error", id: "last-error", text: summary });
  return h("div", { id: "last-error" }, errors.map((err) => {
    const where = [err.file, err.line, err.column].filter((x) => x !== undefined && x !== null).join(":");
    return h("section", { class: "card policy-error" },
      where ? h("p", { class: "mono source-location", text: where }) : null,
      h("p", { class: "error", text: err.message || "" }),
      err.snippet ? h("pre", { class: "policy-text", text: err.snippet }) : null);
  }));
}

async function showPolicies() {
  const p = await api("/v1/policies");
  const modes = p.modes || {};
  content(
    kv([
      ["folder", p.folder || "none"],
      ["revision", h("span", { class: "mono", text: p.revision || "none" })],
      ["policies", String(p.policies.length)],
    ]),
    h("h2", { text: "Last rejected change" }), policyError(p.last_error, p.last_errors),
    h("h2", { text: "Modes" }), json(modes),
    h("h2", { text: "Loaded set" }),
    grid(["id", "effect", "mode", "file", "annotations"], p.policies.map((x) => ({ cells: [
      h("span", { class: "mono", text: x.id }), x.effect, x.mode, x.source,
      h("span", { class: "mono", text: Object.entries(x.annotations).filter(([k]) => k !== "id").map(([k, v]) => `@${k}(${v})`).join(" ") }),
    ] }))));
}

// -- evidence ----------------------------------------------------------------------------------
async function showEvidence() {
  let report;
  try {
    report = await api("/v1/reports/controls");
  } catch (e) {
    content(h("p", { class: "error", text: `${e.code || "error"}: ${e.message}` }));
    return;
  }
  const controls = report.controls || [];
  const links = h("p", { class: "actions" },
    h("a", { href: "/v1/reports/controls?format=html", download: "controls.html", text: "Download HTML" }),
    h("a", { href: "/v1/reports/controls?format=md", download: "controls.md", text: "Download Markdown" }),
    h("a", { href: "/v1/reports/controls?format=json", download: "controls.json", text: "Download JSON" }));
  const summary = report.summary ? json(report.summary) : null;
  content(links, summary, grid(["control", "title", "status", "evidence"], controls.map((c) => ({ cells: [
    h("span", { class: "mono", text: c.id }), c.title || "",
    h("span", { class: c.status === "pass" ? "allow" : c.status === "fail" ? "deny" : "warn", text: c.status }),
    c.summary || c.detail || "",
  ] }))));
}

// -- start -------------------------------------------------------------------------------------
const PAGES = {
  approvals: showApprovals, agents: showAgents, decisions: showDecisions, decision: showDecision,
  tasks: showTasks, certification: showCertification, policies: showPolicies, evidence: showEvidence,
};

async function start() {
  const page = document.body.dataset.page;
  try {
    STATE.session = await api("/console/session");
  } catch (e) {
    return;
  }
  document.getElementById("who").textContent = `${STATE.session.name} (${STATE.session.role})`;
  document.body.dataset.role = STATE.session.role;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === page || (page === "decision" && a.dataset.nav === "decisions")) a.classList.add("active");
  }
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/console/logout", { method: "POST" }).catch(() => null);
    location.assign("/console/login");
  });
  // the badge and notifications follow approvals on every page, pushed by the server
  // refreshes run one after another: two pushes in a row never add a card twice
  let queue = Promise.resolve();
  stream("/v1/approvals/stream", () => {
    queue = queue.then(page === "approvals" ? showApprovals : refreshBadge).catch(() => null);
  });
  try {
    if (page !== "approvals") await refreshBadge();
    await PAGES[page]();
    document.body.dataset.ready = "true";
  } catch (e) {
    flash(`${e.code || "error"}: ${e.message}`);
  }
}

document.addEventListener("DOMContentLoaded", start);
