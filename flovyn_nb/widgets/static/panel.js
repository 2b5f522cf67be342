// flovyn_nb panels: the browser side of RunPanel and Dashboard (an anywidget ES module).
//
// The kernel sends one JSON snapshot per update in the `data` trait. Everything that moves
// by itself (countdowns, elapsed times, growing timeline bars) ticks here, once a second,
// from the deadlines in the snapshot: the kernel never sends a message just because time
// passed. Buttons send {action: ...} messages; the kernel converts and validates the input.
// No innerHTML: log lines and values are user content, so only textContent is used.

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
// Glyphs that plain system fonts have (no emoji font needed).
const KIND_ICON = { task: "▶", timer: "◔", promise: "✎", child: "↳", signal: "✉", operation: "◆" };

// What the user did in a panel (open log groups, typed form values), by panel: the view is
// re-created whenever the kernel replaces the output's static form (update_display), and
// a re-created view must look the same.
const MEMORY = new Map();
function memoryFor(key) {
  let memory = MEMORY.get(key);
  if (!memory) {
    memory = { expanded: new Set(), drafts: new Map() };
    MEMORY.set(key, memory);
  }
  return memory;
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "style") node.setAttribute("style", value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// replaceChildren without the null/false placeholders of optional parts.
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function chip(status) {
  return h("span", { class: `fnb-chip fnb-s-${status.toLowerCase()}`, text: status });
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "";
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const total = Math.floor(s);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}h ${pad(minutes)}m ${pad(seconds)}s` : `${minutes}m ${pad(seconds)}s`;
}

function fmtCountdown(ms) {
  if (ms <= 0) return "due now";
  const total = Math.ceil(ms / 1000);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (days) return `in ${days}d ${hours}h ${pad(minutes)}m`;
  if (hours) return `in ${hours}:${pad(minutes)}:${pad(seconds)}`;
  return `in ${minutes}:${pad(seconds)}`;
}

function fmtClock(epochMs) {
  if (!epochMs) return "";
  return new Date(epochMs).toLocaleTimeString([], { hour12: false });
}

// -- promise forms -------------------------------------------------------------------

// A promise's description is markdown; this renders its common subset (paragraphs, lists,
// **bold**, *italic*, `code`, [links](https://…)) with DOM nodes only: it is user text,
// so nothing of it is ever parsed as HTML.
function markdownLite(text) {
  const inline = (line) => {
    const out = [];
    const pattern = /(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`|\[[^\]]+\]\(https?:[^)\s]+\))/g;
    let last = 0;
    for (const m of line.matchAll(pattern)) {
      if (m.index > last) out.push(line.slice(last, m.index));
      const token = m[0];
      if (token.startsWith("**")) out.push(h("b", { text: token.slice(2, -2) }));
      else if (token.startsWith("`")) out.push(h("code", { text: token.slice(1, -1) }));
      else if (token.startsWith("[")) {
        const close = token.indexOf("](");
        out.push(h("a", { href: token.slice(close + 2, -1), target: "_blank", rel: "noopener noreferrer", text: token.slice(1, close) }));
      } else out.push(h("i", { text: token.slice(1, -1) }));
      last = m.index + token.length;
    }
    if (last < line.length) out.push(line.slice(last));
    return out;
  };
  const blocks = [];
  for (const block of String(text).split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((l) => l.trim());
    if (!lines.length) continue;
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      blocks.push(h("ul", {}, lines.map((l) => h("li", {}, inline(l.replace(/^\s*[-*] /, ""))))));
    } else {
      blocks.push(h("p", {}, lines.flatMap((l, i) => (i ? [" ", ...inline(l)] : inline(l)))));
    }
  }
  return h("div", { class: "fnb-markdown" }, blocks);
}

function fieldNode(spec, root) {
  const id = `fnb-f-${Math.random().toString(36).slice(2)}`;
  const label = h("label", { for: id, class: "fnb-label", text: spec.label + (spec.required ? "" : " (optional)") });
  const help = spec.description ? h("div", { class: "fnb-help", text: spec.description }) : null;
  if (spec.kind === "object") {
    const inner = spec.children.map((child) => fieldNode(child, false));
    if (root) return h("div", { class: "fnb-fields" }, inner);
    return h("fieldset", { class: "fnb-fieldset" }, h("legend", { text: spec.label }), help, inner);
  }
  let input;
  if (spec.kind === "boolean") {
    input = h("input", { type: "checkbox", id, "data-path": spec.path, checked: !!spec.initial });
    return h("div", { class: "fnb-field fnb-check" }, input, label, help);
  }
  if (spec.kind === "enum") {
    const options = spec.options.map((text, index) => h("option", { value: String(index), text }));
    if (!spec.required || spec.initial === "") options.unshift(h("option", { value: "", text: "—" }));
    input = h("select", { id, "data-path": spec.path }, options);
    input.value = spec.initial;
  } else if (spec.kind === "json") {
    input = h("textarea", { id, "data-path": spec.path, rows: 3, placeholder: spec.placeholder, spellcheck: "false" });
    input.value = spec.initial;
  } else {
    const mode = spec.kind === "integer" ? "numeric" : spec.kind === "number" ? "decimal" : "text";
    input = h("input", { type: "text", id, "data-path": spec.path, inputmode: mode, placeholder: spec.placeholder });
    input.value = spec.initial;
  }
  const fieldError = h("div", { class: "fnb-field-error", role: "alert", "data-error-for": spec.path });
  return h("div", { class: "fnb-field" }, label, input, help, fieldError);
}

function formValues(card) {
  const values = {};
  for (const input of card.querySelectorAll("[data-path]")) {
    values[input.getAttribute("data-path")] = input.type === "checkbox" ? input.checked : input.value;
  }
  return values;
}

// One card per pending promise; kept across snapshots so typed input survives updates.
function restoreDraft(body, draft) {
  if (!draft) return;
  for (const input of body.querySelectorAll("[data-path]")) {
    const value = draft[input.getAttribute("data-path")];
    if (value === undefined) continue;
    if (input.type === "checkbox") input.checked = !!value;
    else input.value = value;
  }
}

function promiseCard(promise, send, showRun, drafts) {
  const reason = h("input", { type: "text", class: "fnb-reason", placeholder: "reason (for Reject)" });
  const note = h("div", { class: "fnb-note" });
  const error = h("div", { class: "fnb-form-error", role: "alert" });
  const countdown = h("span", { class: "fnb-countdown" });
  const about = promise.form.description ? markdownLite(promise.form.description) : null;
  const body = h("div", { class: "fnb-form-body" }, fieldNode(promise.form, true));
  const draftKey = `${promise.workflow_id}\u0000${promise.name}`;
  if (drafts) {
    restoreDraft(body, drafts.get(draftKey));
    const keep = () => drafts.set(draftKey, formValues(body));
    body.addEventListener("input", keep);
    body.addEventListener("change", keep);
  }
  const resolve = h("button", {
    class: "fnb-btn fnb-primary",
    text: "Resolve",
    onclick: () => send({ action: "resolve", workflow_id: promise.workflow_id, promise: promise.name, values: formValues(body) }),
  });
  const reject = h("button", {
    class: "fnb-btn",
    text: "Reject",
    onclick: () => send({ action: "reject", workflow_id: promise.workflow_id, promise: promise.name, reason: reason.value }),
  });
  const title = h("div", { class: "fnb-card-title" },
    h("span", { class: "fnb-muted", text: "✎ " }),
    h("b", { text: promise.name }),
    showRun ? h("span", { class: "fnb-muted", text: ` · ${promise.workflow_id}` }) : null,
    promise.typed ? null : h("span", { class: "fnb-muted", text: " · any JSON value" }),
    countdown);
  const card = h("div", { class: "fnb-card", "data-promise": promise.name }, title, about, body, error,
    h("div", { class: "fnb-actions" }, resolve, reject, reason, note));
  return {
    node: card,
    update(p) {
      countdown.setAttribute("data-deadline", p.deadline || "");
      countdown.setAttribute("data-prefix", "times out ");
      if (!p.deadline) countdown.textContent = "";
      // Errors of single fields show beside them; the rest (the run's own check) on top.
      const fields = p.fields || {};
      for (const slot of body.querySelectorAll("[data-error-for]")) {
        const message = fields[slot.getAttribute("data-error-for")] || "";
        slot.textContent = message;
        slot.style.display = message ? "" : "none";
        const input = slot.parentElement && slot.parentElement.querySelector("[data-path]");
        if (input) {
          if (message) input.setAttribute("aria-invalid", "true");
          else input.removeAttribute("aria-invalid");
        }
      }
      const general = Object.keys(fields).length ? "" : (p.error || "");
      error.textContent = general;
      error.style.display = general ? "" : "none";
      resolve.disabled = reject.disabled = !!p.busy;
      note.textContent = p.busy ? "sent — waiting for the run to continue…" : "";
    },
  };
}

function syncCards(container, cards, promises, send, showRun, drafts) {
  const seen = new Set();
  for (const p of promises) {
    const key = `${p.workflow_id}\u0000${p.name}`;
    seen.add(key);
    let card = cards.get(key);
    if (!card) {
      card = promiseCard(p, send, showRun, drafts);
      cards.set(key, card);
      container.append(card.node);
    }
    card.update(p);
  }
  for (const [key, card] of cards) {
    if (!seen.has(key)) {
      card.node.remove();
      cards.delete(key);
    }
  }
}

// -- one run -------------------------------------------------------------------------

function logLines(logs, limit) {
  const lines = limit ? logs.lines.slice(-limit) : logs.lines;
  return lines.map((line) =>
    h("div", { class: `fnb-line${line.e ? " fnb-err" : line.l === "WARNING" ? " fnb-warn" : ""}` },
      h("span", { class: "fnb-line-tag", text: line.s === "log" ? line.l : line.s }),
      h("span", { class: "fnb-line-text", text: line.m })));
}

// A step's durable stream (widgets/streams.py): progress bar, running text, data rows, errors.
function streamNode(s) {
  const pct = s.progress === null ? null : Math.round(s.progress * 100);
  return h("div", { class: "fnb-stream" },
    pct === null ? null : h("div", { class: "fnb-stream-progress", title: s.details || null },
      h("progress", { max: 100, value: pct }), ` ${pct}%${s.details ? " " + s.details : ""}`),
    s.text ? h("pre", { class: "fnb-stream-text", style: "white-space:pre-wrap;margin:2px 0", text: s.text }) : null,
    s.rows.map((row) => h("div", { class: "fnb-stream-row" }, h("code", { text: row }))),
    s.errors.map((e) => h("div", { class: "fnb-err-text", text: `error: ${e.message}${e.code ? " [" + e.code + "]" : ""}` })));
}

// A traceback with the engine's frames hidden; a toggle shows them (remembered per panel).
function tracebackNode(error, open, memory, title) {
  const hidden = Number(error.hidden_frames || 0);
  const key = `tb\u0000${title || "run"}`;
  const full = memory && memory.expanded.has(key);
  const pre = h("pre", { class: "fnb-pre fnb-err-pre", text: full && error.full_traceback ? error.full_traceback : error.traceback });
  const toggle = hidden
    ? h("button", { class: "fnb-link fnb-tb-toggle", text: full ? "hide engine frames" : `show ${hidden} engine frame${hidden === 1 ? "" : "s"}`,
        onclick: (ev) => {
          ev.preventDefault();
          if (memory.expanded.has(key)) memory.expanded.delete(key); else memory.expanded.add(key);
          const now = memory.expanded.has(key);
          pre.textContent = now ? error.full_traceback : error.traceback;
          ev.target.textContent = now ? "hide engine frames" : `show ${hidden} engine frame${hidden === 1 ? "" : "s"}`;
        } })
    : null;
  return h("details", { class: "fnb-tb", open }, h("summary", { text: title || "traceback" }), toggle, pre);
}

class RunView {
  constructor(send, clock, memory) {
    this.send = send;
    this.clock = clock;
    this.memory = memory || memoryFor(Math.random());
    this.expanded = this.memory.expanded;
    this.cards = new Map();
    this.run = null;
    this.head = h("div", { class: "fnb-head" });
    this.problem = h("div", { class: "fnb-problem" });
    this.queue = h("div", { class: "fnb-queue" }); // where a run no engine holds waits
    this.origin = h("div", { class: "fnb-muted fnb-origin" }); // earlier attempts, fork origin
    this.forms = h("div", { class: "fnb-forms" });
    this.steps = h("div", { class: "fnb-steps" });
    this.logs = h("div", { class: "fnb-logs" });
    this.result = h("div", { class: "fnb-result" });
    this.input = h("div", { class: "fnb-input fnb-clip" });
    this.tab = this.memory.tab || "timeline";
    this.tabs = h("div", { class: "fnb-tabs", role: "tablist" });
    this.events = h("div", { class: "fnb-events" });
    this.source = h("div", { class: "fnb-source" });
    this.childBox = h("div", { class: "fnb-child" }); // a child run opened from a step's name
    this.child = null;
    this.childKey = null;
    this.node = h("div", { class: "fnb-run" }, this.head, this.origin, this.input, this.queue, this.problem, this.forms, this.tabs, this.steps, this.events, this.source, this.childBox, this.logs, this.result);
  }

  renderChild() {
    const data = this.run.child;
    if (!data) {
      this.child = null;
      this.childKey = null;
      fill(this.childBox);
      return;
    }
    if (!this.child || this.childKey !== data.workflow_id) {
      this.child = new RunView(this.send, this.clock, memoryFor(`child\u0000${data.workflow_id}`));
      this.childKey = data.workflow_id;
      const close = h("button", { class: "fnb-btn fnb-close", text: "× close", onclick: () => this.send({ action: "select", workflow_id: null }) });
      fill(this.childBox, close, this.child.node);
    }
    this.child.update(data);
  }

  update(run) {
    this.run = run;
    this.node.setAttribute("data-status", run.status);
    this.renderHead();
    fill(this.origin, ...(run.origin || []).map((line) => h("div", { text: line })));
    const shownInput = run.input === undefined || run.input === null || run.input === "null" ? "" : String(run.input);
    fill(this.input, shownInput ? [h("span", { class: "fnb-muted", text: "input " }), h("code", { text: shownInput, title: shownInput })] : []);
    this.input.style.display = shownInput ? "" : "none";
    this.problem.textContent = run.problem || "";
    this.problem.style.display = run.problem ? "" : "none";
    const queue = run.queue;
    this.queue.textContent = queue ? queue.text : "";
    this.queue.style.display = queue ? "" : "none";
    this.queue.classList.toggle("fnb-unserved", Boolean(queue && !queue.served));
    syncCards(this.forms, this.cards, run.promises, this.send, false, this.memory.drafts);
    this.renderTabs();
    this.renderSteps();
    this.renderChild();
    this.renderLogs();
    this.renderResult();
    this.tick();
  }

  renderHead() {
    const run = this.run;
    const cancel = run.cancel || {};
    const canCancel = !TERMINAL.has(run.status);
    const button = canCancel
      ? h("button", {
          class: "fnb-btn fnb-cancel",
          text: run.cancel_requested || cancel.busy ? "Cancelling…" : "Cancel",
          disabled: !!(run.cancel_requested || cancel.busy),
          onclick: () => { this.confirmCancel = true; this.renderHead(); },
        })
      : null;
    // Issue 15: replay this run on the code registered now (fn.check_replay; runs nothing).
    const check = run.check || {};
    const checkButton = canCancel
      ? h("button", {
          class: "fnb-btn fnb-check",
          title: "replay this run's history on the workflow's current code (nothing is executed)",
          text: check.busy ? "Checking…" : "Check replay",
          disabled: !!check.busy,
          onclick: () => this.send({ action: "check_replay", workflow_id: run.workflow_id }),
        })
      : null;
    const checkNote = check.text
      ? h("span", { class: `fnb-inline ${check.ok ? "fnb-check-ok" : "fnb-form-error"}`, text: check.text })
      : null;
    // Retry: a failed or cancelled run runs again from its failed step, as the same run.
    const again = run.again || {};
    const retry = run.status === "FAILED" || run.status === "CANCELLED"
      ? h("button", {
          class: "fnb-btn fnb-retry",
          text: again.busy === "retry" ? "Retrying…" : "Retry",
          title: "run it again from the failed step, with the code registered now",
          disabled: !!again.busy,
          onclick: () => this.send({ action: "retry", workflow_id: run.workflow_id }),
        })
      : null;
    const againNote = again.error
      ? h("span", { class: "fnb-form-error fnb-inline", text: again.error })
      : again.forked ? h("span", { class: "fnb-muted fnb-inline", text: `forked as ${again.forked}` }) : null;
    // Cancel asks first: a cancelled run cannot be taken back.
    const confirm = canCancel && this.confirmCancel && !(run.cancel_requested || cancel.busy)
      ? h("span", { class: "fnb-confirm", role: "group", "aria-label": "confirm cancel" },
          h("span", { text: "Cancel this run? " }),
          h("button", { class: "fnb-btn fnb-danger", text: "Yes, cancel", onclick: () => { this.confirmCancel = false; this.send({ action: "cancel", workflow_id: run.workflow_id }); } }),
          h("button", { class: "fnb-btn", text: "No", onclick: () => { this.confirmCancel = false; this.renderHead(); } }))
      : null;
    const elapsed = h("span", { class: "fnb-muted fnb-elapsed", "data-since": run.created, "data-until": run.ended || "" });
    fill(this.head,
      h("span", { class: "fnb-status" }, chip(run.status)),
      h("span", { class: "fnb-title", text: run.workflow_id }),
      h("span", { class: "fnb-muted", text: run.workflow_kind }),
      elapsed,
      h("span", { class: "fnb-spacer" }),
      cancel.error ? h("span", { class: "fnb-form-error fnb-inline", text: cancel.error }) : null,
      checkNote,
      checkButton,
      againNote,
      confirm || button,
      retry,
    );
  }

  renderSteps() {
    const run = this.run;
    if (!run.steps.length) {
      fill(this.steps, h("div", { class: "fnb-muted fnb-empty", text: TERMINAL.has(run.status) ? "no steps" : "no steps yet" }));
      return;
    }
    const t0 = run.created;
    const t1 = run.ended || Math.max(this.clock(), ...run.steps.map((s) => s.end || s.start));
    const span = Math.max(t1 - t0, 1);
    const rows = run.steps.flatMap((step) => {
      const end = step.end || (TERMINAL.has(step.status) ? step.start : null);
      const left = ((step.start - t0) / span) * 100;
      const right = (((end || this.clock()) - t0) / span) * 100;
      const bar = h("div", {
        class: `fnb-bar fnb-s-${step.status.toLowerCase()}${end ? "" : " fnb-live"}`,
        style: `left:${Math.max(0, Math.min(left, 99.5))}%;width:${Math.max(right - left, 0.5)}%`,
        title: `${step.name}: ${step.status}`,
      });
      const hasLogs = step.logs && step.logs.count > 0;
      const logBadge = hasLogs
        ? h("button", {
            class: `fnb-badge${step.logs.errors ? " fnb-badge-err" : ""}`,
            title: "show this step's log",
            text: `≡ ${step.logs.count}`,
            onclick: () => this.toggle(step.key),
          })
        : null;
      const attempts = step.kind === "task" && step.attempts
        ? `${step.attempts}${step.max_attempts > 1 ? "/" + step.max_attempts : ""}` : "";
      const info = step.deadline && !end
        ? h("span", { class: "fnb-countdown", "data-deadline": step.deadline, "data-prefix": `${step.deadline_label} ` })
        : step.error ? h("span", { class: "fnb-err-text", text: `${step.error.type}: ${step.error.message}` })
        : h("span", { class: "fnb-muted", text: step.detail });
      const fork = step.number
        ? h("button", {
            class: "fnb-badge fnb-fork",
            title: `Fork from here: a new run that reuses the steps before step ${step.number} and runs the rest with the code registered now`,
            text: "⑂",
            disabled: !!(run.again || {}).busy,
            onclick: () => this.send({ action: "fork", workflow_id: run.workflow_id, step: step.number }),
          })
        : null;
      // Issue 15: a failed task step offers the one line that brings its record into a cell.
      const debug = step.debug_line
        ? h("button", {
            class: "fnb-badge fnb-debug",
            title: `Debug in a cell: run ${step.debug_line}`,
            text: "Debug in a cell",
            onclick: (event) => {
              const line = event.currentTarget.parentNode.querySelector(".fnb-debug-line");
              if (line) line.style.display = line.style.display === "none" ? "" : "none";
              if (navigator.clipboard) navigator.clipboard.writeText(step.debug_line).catch(() => {});
            },
          })
        : null;
      const debugLine = step.debug_line
        ? h("code", { class: "fnb-debug-line", style: "display:none", text: step.debug_line })
        : null;
      const streamRow = step.streams
        ? h("tr", { class: "fnb-stream-step" }, h("td", {}), h("td", { colspan: 7 }, streamNode(step.streams)))
        : null;
      const name = step.child
        ? h("button", { class: "fnb-link fnb-child", title: `open ${step.child}`, text: step.name,
            onclick: () => this.send({ action: "select", workflow_id: step.child }) })
        : h("span", { text: step.name });
      const row = h("tr", { class: "fnb-step", "data-kind": step.kind, "data-status": step.status },
        h("td", { class: "fnb-kind", title: step.kind, text: KIND_ICON[step.kind] || "•" }),
        h("td", { class: "fnb-name" }, name, logBadge, fork, debug, debugLine),
        h("td", {}, chip(step.status)),
        h("td", { class: "fnb-track" }, bar),
        h("td", { class: "fnb-num fnb-muted", text: `+${fmtDuration(step.start - t0)}` }),
        h("td", { class: "fnb-num", "data-since": step.start, "data-until": end || "" }),
        h("td", { class: "fnb-num fnb-muted", title: "attempts", text: attempts }),
        h("td", { class: "fnb-info" }, h("div", { class: "fnb-clip", title: info.textContent || null }, info)));
      if (!(step.attempt_list && step.attempt_list.length > 1)) return [row, streamRow].filter(Boolean);
      // Every attempt of a retried step, the failed ones with their error.
      const tries = step.attempt_list.map((a) => h("span", { class: `fnb-attempt fnb-a-${a.status.toLowerCase()}`, "data-attempt": String(a.number) },
        `#${a.number} ${a.status.toLowerCase()}${a.end && a.start ? ` in ${fmtDuration(a.end - a.start)}` : ""}`,
        a.error ? h("span", { class: "fnb-err-text", text: ` ${a.error}` }) : null));
      return [row, h("tr", { class: "fnb-attempts-row" }, h("td", {}), h("td", { colspan: "7" }, h("div", { class: "fnb-attempts" }, tries))), streamRow].filter(Boolean);
    });
    const head = h("tr", {}, ["", "step", "status", "timeline", "start", "duration", "tries", ""].map((t) => h("th", { text: t })));
    fill(this.steps, h("table", { class: "fnb-table" }, h("thead", {}, head), h("tbody", {}, rows.flat())));
  }

  // "timeline" (the steps) or "events" (the raw history, as recorded).
  renderTabs() {
    const events = this.run.events || { total: 0, items: [] };
    const tab = (name, label) => h("button", { class: `fnb-tab${this.tab === name ? " fnb-on" : ""}`, role: "tab", "aria-selected": this.tab === name ? "true" : "false", "data-tab": name, text: label,
      onclick: () => { this.tab = this.memory.tab = name; this.renderTabs(); this.renderSteps(); } });
    fill(this.tabs, tab("timeline", "timeline"), tab("events", `events ${events.total}`), tab("source", "source"));
    this.steps.style.display = this.tab === "timeline" ? "" : "none";
    this.events.style.display = this.tab === "events" ? "" : "none";
    this.source.style.display = this.tab === "source" ? "" : "none";
    if (this.tab === "source") {
      // The workflow's code as this run started it (null: not recorded in the store).
      const text = this.run.source;
      fill(this.source, typeof text === "string" ? h("pre", { class: "fnb-code", text }) : h("div", { class: "fnb-muted", text: "source not recorded" }));
    }
    if (this.tab !== "events") return;
    const t0 = this.run.created;
    const hidden = events.total - events.items.length;
    const rows = events.items.map((e) => h("tr", { class: "fnb-event", "data-type": e.type },
      h("td", { class: "fnb-num fnb-muted", text: String(e.seq) }),
      h("td", { class: "fnb-num fnb-muted", text: `+${fmtDuration(e.ts - t0)}` }),
      h("td", { text: e.type }),
      h("td", { class: "fnb-info" }, h("div", { class: "fnb-clip", title: e.payload, text: e.payload }))));
    const head = h("tr", {}, ["seq", "at", "event", "payload"].map((t) => h("th", { text: t })));
    fill(this.events,
      hidden > 0 ? h("div", { class: "fnb-muted", text: `… ${hidden} earlier events (fn.get_run(${JSON.stringify(this.run.workflow_id)}).events has them all)` }) : null,
      h("table", { class: "fnb-table" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  toggle(key) {
    if (this.expanded.has(key)) this.expanded.delete(key);
    else this.expanded.add(key);
    this.renderLogs();
  }

  renderLogs() {
    const run = this.run;
    const groups = [];
    if (run.workflow_logs.count) groups.push({ key: "__workflow__", name: "workflow", logs: run.workflow_logs });
    for (const step of run.steps) {
      if (step.logs && step.logs.count) groups.push({ key: step.key, name: step.name, logs: step.logs });
    }
    const oldBoxes = new Map([...this.logs.querySelectorAll("[data-log]")].map((n) => [n.getAttribute("data-log"), n]));
    const nodes = groups.map((group) => {
      const open = this.expanded.has(group.key);
      const kept = group.logs.lines.length;
      const hidden = group.logs.count - kept;
      const header = h("div", { class: "fnb-log-head", onclick: () => this.toggle(group.key) },
        h("span", { class: "fnb-caret", text: open ? "▾" : "▸" }),
        h("b", { text: group.name }),
        h("span", { class: "fnb-muted", text: ` ${group.logs.count} line${group.logs.count === 1 ? "" : "s"}` }),
        group.logs.errors ? h("span", { class: "fnb-err-text", text: ` · ${group.logs.errors} error${group.logs.errors === 1 ? "" : "s"}` }) : null,
        h("span", { class: "fnb-muted fnb-hint", text: open ? " · hide" : kept > 3 ? ` · show all ${kept}` : "" }));
      const box = h("div", { class: `fnb-log-box${open ? " fnb-open" : ""}`, "data-log": group.key },
        open && hidden > 0 ? h("div", { class: "fnb-muted", text: `… ${hidden} earlier lines (fn.run_logs(${JSON.stringify(run.workflow_id)}) has them all)` }) : null,
        logLines(group.logs, open ? 0 : 3));
      const old = oldBoxes.get(group.key);
      if (old && open) {
        // Follow the tail unless the user scrolled up to read.
        const atBottom = old.scrollHeight - old.scrollTop - old.clientHeight < 8;
        requestAnimationFrame(() => { box.scrollTop = atBottom ? box.scrollHeight : old.scrollTop; });
      } else if (open) {
        requestAnimationFrame(() => { box.scrollTop = box.scrollHeight; });
      }
      return h("div", { class: "fnb-log-group" }, header, box);
    });
    fill(this.logs, ...(nodes.length ? [h("div", { class: "fnb-section", text: "Logs" }), ...nodes] : []));
  }

  renderResult() {
    const run = this.run;
    const parts = [];
    if (run.has_output) {
      parts.push(h("div", { class: "fnb-section", text: "Result" }), h("pre", { class: "fnb-pre", text: run.output }));
    }
    if (run.error) {
      parts.push(h("div", { class: "fnb-section fnb-err-text", text: "Error" }),
        h("div", { class: "fnb-error-line" }, h("b", { text: run.error.type }), `: ${run.error.message}`));
      if (run.error.traceback) parts.push(tracebackNode(run.error, true, this.memory));
    }
    for (const step of run.steps) {
      if (step.error && step.error.traceback && this.expanded.has(step.key)) {
        parts.push(tracebackNode(step.error, false, this.memory, `${step.name}: ${step.error.type}`));
      }
    }
    fill(this.result, ...parts);
  }

  tick() {
    const now = this.clock();
    if (this.run && !TERMINAL.has(this.run.status) && this.run.steps.some((s) => !s.end)) this.renderSteps();
    for (const node of this.node.querySelectorAll("[data-deadline]")) {
      const deadline = Number(node.getAttribute("data-deadline"));
      if (deadline) node.textContent = (node.getAttribute("data-prefix") || "") + fmtCountdown(deadline - now) + ` (${fmtDateTime(deadline)})`;
    }
    for (const node of this.node.querySelectorAll("[data-since]")) {
      const since = Number(node.getAttribute("data-since"));
      const until = Number(node.getAttribute("data-until")) || now;
      const text = fmtDuration(until - since);
      if (!node.classList.contains("fnb-elapsed")) node.textContent = text;
      else if (node.getAttribute("data-until")) node.textContent = `took ${text}`;
      // "running 7 s" only beside RUNNING: a waiting run shows when it started instead.
      else if (this.run && this.run.status === "RUNNING") node.textContent = `running ${text}`;
      else node.textContent = `started ${fmtDateTime(since)}`;
    }
  }
}

// -- the dashboard -------------------------------------------------------------------
// The kernel sends one page of runs (the store filters, sorts and pages): every filter,
// search, sort and page turn here is a {action: "query"} message, never a local filter.

const FILTERS = ["ALL", "RUNNING", "WAITING", "PENDING", "COMPLETED", "FAILED", "CANCELLED"];
const COLUMNS = [
  { key: "workflow_id", label: "workflow id" },
  { key: "kind", label: "kind" },
  { key: "status", label: "status" },
  { key: "created", label: "created" },
  { key: "duration", label: "duration" },
  { key: null, label: "error" },
];

function fmtDateTime(epochMs) {
  if (!epochMs) return "";
  const d = new Date(epochMs);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

class DashboardView {
  constructor(send, clock, memory) {
    this.send = send;
    this.clock = clock;
    this.memory = memory || memoryFor(Math.random());
    this.cards = new Map();
    this.open = this.memory.openInbox || (this.memory.openInbox = new Set());
    this.selectedPromises = this.memory.selectedPromises || (this.memory.selectedPromises = new Set());
    this.detail = null;
    this.detailKey = null;
    this.head = h("div", { class: "fnb-head" });
    this.problem = h("div", { class: "fnb-problem" });
    this.inbox = h("div", { class: "fnb-inbox" });
    this.schedules = h("div", { class: "fnb-schedules" });
    this.table = h("div", { class: "fnb-runs" });
    this.pager = h("div", { class: "fnb-pager" });
    this.detailBox = h("div", { class: "fnb-detail" });
    this.node = h("div", { class: "fnb-dash" }, this.head, this.problem, this.inbox, this.schedules, this.table, this.pager);
  }

  query(change) {
    this.send({ action: "query", ...change });
  }

  update(data) {
    this.data = data;
    this.problem.textContent = data.problem || "";
    this.problem.style.display = data.problem ? "" : "none";
    this.renderHead();
    this.renderInbox();
    this.renderSchedules();
    if (data.detail) {
      if (!this.detail || this.detailKey !== data.detail.workflow_id) {
        this.detail = new RunView(this.send, this.clock, memoryFor(`detail\u0000${data.detail.workflow_id}`));
        this.detailKey = data.detail.workflow_id;
        const close = h("button", { class: "fnb-btn fnb-close", text: "× close", onclick: () => this.send({ action: "select", workflow_id: null }) });
        fill(this.detailBox, close, this.detail.node);
      }
      this.detail.update(data.detail);
    } else {
      this.detail = null;
      this.detailKey = null;
      fill(this.detailBox);
    }
    this.renderRuns();
    this.renderPager();
  }

  renderHead() {
    const data = this.data;
    const q = data.query || {};
    const chips = FILTERS.map((status) => {
      const count = status === "ALL" ? data.total : data.counts[status] || 0;
      if (status !== "ALL" && !count && q.status !== status) return null;
      return h("button", {
        class: `fnb-filter${(q.status || "ALL") === status ? " fnb-on" : ""}`,
        "data-filter": status,
        text: `${status.toLowerCase()} ${count}`,
        onclick: () => this.query({ status }),
      });
    });
    if (!this.search) {
      // Kept across updates: typing must not be interrupted by a redraw.
      this.search = h("input", { type: "search", class: "fnb-search", placeholder: "search id or kind", "aria-label": "search runs by id or kind" });
      let timer = null;
      this.search.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => this.query({ search: this.search.value }), 250);
      });
      this.since = h("select", { class: "fnb-since", "aria-label": "created within" },
        [["0", "any time"], ["1", "last hour"], ["24", "last day"], ["168", "last week"]].map(([v, t]) => h("option", { value: v, text: t })));
      this.since.addEventListener("change", () => this.query({ since_hours: Number(this.since.value) }));
    }
    if (document.activeElement !== this.search && this.search.value !== (q.search || "")) this.search.value = q.search || "";
    fill(this.head, h("span", { class: "fnb-title", text: "flovyn runs" }), h("span", { class: "fnb-muted", text: data.store }),
      h("span", { class: "fnb-spacer" }), this.search, this.since, ...chips);
  }

  // One line per waiting promise; a click opens its form in place; checked lines can be
  // resolved together with one value (a parameter sweep).
  renderInbox() {
    const promises = this.data.promises;
    if (!promises.length) {
      fill(this.inbox);
      this.cards.clear();
      return;
    }
    const keyOf = (p) => `${p.workflow_id}\u0000${p.name}`;
    const live = new Set(promises.map(keyOf));
    for (const key of [...this.selectedPromises]) if (!live.has(key)) this.selectedPromises.delete(key);
    const lines = promises.map((p) => {
      const key = keyOf(p);
      const isOpen = this.open.has(key);
      const box = h("input", { type: "checkbox", class: "fnb-pick", "aria-label": `select ${p.workflow_id} ${p.name}`, checked: this.selectedPromises.has(key),
        onchange: (ev) => { if (ev.target.checked) this.selectedPromises.add(key); else this.selectedPromises.delete(key); this.renderBulk(); } });
      const line = h("div", { class: `fnb-inbox-line${p.error ? " fnb-has-error" : ""}`, "data-promise": p.name, "data-workflow-id": p.workflow_id },
        box,
        h("button", { class: "fnb-link fnb-inbox-open", "aria-expanded": isOpen ? "true" : "false",
          onclick: () => { if (this.open.has(key)) this.open.delete(key); else this.open.add(key); this.renderInbox(); } },
          h("span", { class: "fnb-caret", text: isOpen ? "▾" : "▸" }), h("b", { text: p.name }), h("span", { class: "fnb-muted", text: ` · ${p.workflow_id}` })),
        h("span", { class: "fnb-muted", text: ` · asked ${fmtDateTime(p.created)}` }),
        p.deadline ? h("span", { class: "fnb-countdown", "data-deadline": p.deadline, "data-prefix": " · times out " }) : null,
        p.error ? h("span", { class: "fnb-form-error fnb-inline", text: ` ${p.error}` }) : null,
        p.busy ? h("span", { class: "fnb-muted", text: " · sent" }) : null);
      let card = this.cards.get(key);
      if (isOpen) {
        if (!card) {
          card = promiseCard(p, this.send, true, this.memory.drafts);
          this.cards.set(key, card);
        }
        card.update(p);
        return h("div", { class: "fnb-inbox-item" }, line, card.node);
      }
      this.cards.delete(key);
      return h("div", { class: "fnb-inbox-item" }, line);
    });
    if (!this.bulk) {
      this.bulkValue = h("input", { type: "text", class: "fnb-bulk-value", placeholder: "one JSON value, e.g. true", "aria-label": "value for all selected promises" });
      this.bulkButton = h("button", { class: "fnb-btn fnb-primary", text: "Resolve all selected",
        onclick: () => {
          const targets = [...this.selectedPromises].map((k) => k.split("\u0000"));
          if (targets.length) this.send({ action: "resolve_many", targets, value: this.bulkValue.value });
        } });
      this.bulkCount = h("span", { class: "fnb-muted" });
      this.bulk = h("div", { class: "fnb-bulk" }, this.bulkCount, this.bulkValue, this.bulkButton);
    }
    this.renderBulk();
    fill(this.inbox, h("div", { class: "fnb-section", text: `Waiting for input (${promises.length})` }), this.bulk, h("div", { class: "fnb-inbox-list" }, lines));
  }

  // One row per schedule: its next fire time counts down here (local time beside it);
  // Pause / Resume write the store in the kernel, which re-sends the list.
  renderSchedules() {
    const items = this.data.schedules || [];
    if (!items.length) {
      fill(this.schedules);
      return;
    }
    const now = this.clock();
    const rows = items.map((s) => h("tr", { class: "fnb-schedule-row", "data-schedule": s.name },
      h("td", { class: "fnb-name", text: s.name }),
      h("td", { class: "fnb-muted", text: s.workflow }),
      h("td", {}, h("code", { text: s.cron })),
      h("td", { class: "fnb-muted", text: s.queue }),
      h("td", { class: "fnb-next" }, s.paused
        ? chip("PAUSED")
        : s.next_fire
          ? h("span", { class: "fnb-countdown", "data-deadline": s.next_fire, "data-prefix": "",
              text: `${fmtCountdown(s.next_fire - now)} (${fmtDateTime(s.next_fire)})` })
          : h("span", { class: "fnb-muted", text: "—" })),
      h("td", {},
        h("button", { class: "fnb-btn fnb-schedule-toggle", disabled: s.busy,
          text: s.busy ? "…" : s.paused ? "Resume" : "Pause",
          onclick: () => this.send({ action: s.paused ? "resume_schedule" : "pause_schedule", name: s.name }) }),
        s.error ? h("span", { class: "fnb-form-error fnb-inline", text: ` ${s.error}` }) : null)));
    const head = h("tr", {}, ["schedule", "workflow", "cron", "queue", "next fire", ""].map((t) => h("th", { text: t })));
    fill(this.schedules, h("div", { class: "fnb-section", text: `Schedules (${items.length})` }),
      h("table", { class: "fnb-table" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  renderBulk() {
    if (!this.bulk) return;
    const n = this.selectedPromises.size;
    this.bulkCount.textContent = n ? `${n} selected` : "select lines to answer them together";
    this.bulkButton.disabled = !n;
  }

  renderRuns() {
    const data = this.data;
    const q = data.query || {};
    const runs = data.runs;
    if (!runs.length) {
      fill(this.table, h("div", { class: "fnb-muted fnb-empty", text: data.total ? "no runs match" : "no runs in this store yet" }));
      return;
    }
    const rows = [];
    for (const r of runs) {
      rows.push(h("tr", {
          class: `fnb-run-row${data.selected === r.workflow_id ? " fnb-selected" : ""}`,
          "data-workflow-id": r.workflow_id,
          onclick: () => this.send({ action: "select", workflow_id: data.selected === r.workflow_id ? null : r.workflow_id }),
        },
        h("td", { class: "fnb-name" }, h("a", { class: "fnb-link", text: r.workflow_id })),
        h("td", { class: "fnb-muted", text: r.kind + (r.child ? " (child)" : "") }),
        h("td", {}, chip(r.status)),
        h("td", { class: "fnb-num fnb-muted", title: `updated ${fmtDateTime(r.updated)}`, text: fmtDateTime(r.created) }),
        h("td", { class: "fnb-num", text: r.duration === null ? "" : fmtDuration(r.duration) }),
        h("td", { class: "fnb-info" }, r.error ? h("div", { class: "fnb-clip fnb-err-text", title: r.error, text: r.error })
          : r.stuck ? h("div", { class: "fnb-clip fnb-stuck", title: r.stuck, text: r.stuck }) : null)));
      if (data.selected === r.workflow_id && this.detail) {
        // The clicked run opens right under its row, not below the whole list.
        rows.push(h("tr", { class: "fnb-detail-row" }, h("td", { colspan: String(COLUMNS.length) }, this.detailBox)));
      }
    }
    const head = h("tr", {}, COLUMNS.map((c) => {
      if (!c.key) return h("th", { text: c.label });
      const on = q.sort === c.key;
      const arrow = on ? (q.descending ? " ▼" : " ▲") : "";
      return h("th", { class: "fnb-sortable", "aria-sort": on ? (q.descending ? "descending" : "ascending") : "none" },
        h("button", { class: "fnb-sort", "data-sort": c.key, text: c.label + arrow,
          onclick: () => this.query({ sort: c.key, descending: on ? !q.descending : true }) }));
    }));
    fill(this.table, h("table", { class: "fnb-table" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  renderPager() {
    const data = this.data;
    const q = data.query || { offset: 0, limit: data.runs.length };
    const total = data.matching;
    if (!total) {
      fill(this.pager);
      return;
    }
    const first = q.offset + 1;
    const last = q.offset + data.runs.length;
    fill(this.pager,
      h("button", { class: "fnb-btn fnb-prev", text: "‹ newer", disabled: q.offset <= 0,
        onclick: () => this.query({ offset: Math.max(0, q.offset - q.limit) }) }),
      h("span", { class: "fnb-muted fnb-range", text: `${first}–${last} of ${total.toLocaleString("en-US")}` }),
      h("button", { class: "fnb-btn fnb-next", text: "older ›", disabled: last >= total,
        onclick: () => this.query({ offset: q.offset + q.limit }) }));
  }

  tick() {
    const now = this.clock();
    for (const node of [...this.inbox.querySelectorAll("[data-deadline]"), ...this.schedules.querySelectorAll("[data-deadline]")]) {
      const deadline = Number(node.getAttribute("data-deadline"));
      if (deadline) node.textContent = (node.getAttribute("data-prefix") || "") + fmtCountdown(deadline - now) + ` (${fmtDateTime(deadline)})`;
    }
    if (this.detail) this.detail.tick();
  }
}

function render({ model, el }) {
  let offset = 0; // kernel clock minus browser clock, so countdowns follow the kernel
  const clock = () => Date.now() + offset;
  let disconnected = false;
  let timer = null;
  const root = h("div", { class: "fnb" });
  const send = (content) => {
    if (disconnected) return;
    try {
      model.send(content);
    } catch (err) {
      disconnect();
    }
  };
  let view = null;
  const draw = () => {
    if (disconnected) return; // what the panel shows now is its last known state
    const data = model.get("data") || {};
    if (data.now) offset = data.now - Date.now();
    const Kind = data.kind === "dashboard" ? DashboardView : RunView;
    if (!view || !(view instanceof Kind)) {
      const key = data.kind === "dashboard" ? `dashboard\u0000${data.store}` : `run\u0000${data.workflow_id}`;
      view = new Kind(send, clock, memoryFor(key));
      fill(el, root);
      fill(root, view.node);
    }
    if (data.kind) view.update(data);
  };
  // The kernel is gone (restarted, shut down) or never answered: say so, stop every
  // countdown and disable every action, since nothing here can reach a run any more.
  const disconnect = () => {
    if (disconnected) return;
    disconnected = true;
    clearInterval(timer);
    root.classList.add("fnb-disconnected");
    root.prepend(h("div", { class: "fnb-disconnected-note", role: "status", text: "disconnected — re-run the cell to reconnect this panel" }));
    for (const node of root.querySelectorAll("button, input, select, textarea")) node.disabled = true;
    for (const node of root.querySelectorAll("[data-deadline]")) {
      const deadline = Number(node.getAttribute("data-deadline"));
      if (deadline) node.textContent = `${node.getAttribute("data-prefix") || ""}at ${fmtDateTime(deadline)}`;
      node.removeAttribute("data-deadline");
    }
  };
  // The widget manager sets the model's comm_live to false when the kernel restarts or
  // dies (ipywidgets' disconnect()); its setter triggers "comm_live_update". Backbone
  // calls back with the view as `this`, whose model tells which way it went.
  const onCommLive = function () {
    const live = this && this.model ? this.model.comm_live : false;
    if (live !== true) disconnect();
  };
  model.on("change:data", draw);
  model.on("comm_live_update", onCommLive);
  draw();
  // A model restored from the widget state saved in the notebook has no kernel behind
  // it from the start (no comm_live_update then): a local, never-synced change makes
  // Backbone call back with the view as `this`, and its model says whether a comm lives.
  const probe = function () {
    const inner = this && this.model;
    if (inner && inner.comm_live === false) disconnect();
  };
  model.on("change:_fnb_probe", probe);
  model.set("_fnb_probe", Date.now());
  model.off("change:_fnb_probe", probe);
  timer = setInterval(() => view && !disconnected && view.tick(), 1000);
  return () => {
    clearInterval(timer);
    model.off("change:data", draw);
    model.off("comm_live_update", onCommLive);
  };
}

export default { render };
