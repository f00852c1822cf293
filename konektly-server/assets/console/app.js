// The konektly console: plain JavaScript over the /v1 API. The API key is kept in this tab's
// sessionStorage and sent in the Authorization header only; it never goes into a URL. Everything
// shown that comes from data is set with textContent (never innerHTML).
"use strict";

(function () {
  const KEY = "konektly.apiKey";
  const PAGES = ["accounts", "compose", "posts", "webhooks"];
  const FINAL = ["published", "failed", "cancelled"];
  const $ = (id) => document.getElementById(id);

  // ---- helpers -------------------------------------------------------------------------------

  // el("td", {class: "x"}, "text", child…): an element whose text children are text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function clock(d) {
    return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function flash(message, bad) {
    const f = $("flash");
    f.textContent = message;
    f.classList.toggle("bad", !!bad);
    f.hidden = !message;
  }

  function apiKey() {
    return sessionStorage.getItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(method, path, body, headers) {
    const h = Object.assign({ Authorization: "Bearer " + apiKey() }, headers || {});
    const init = { method, headers: h, cache: "no-store" };
    if (body !== undefined) {
      h["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = { detail: text };
      }
    }
    if (r.status === 401) {
      signOut("Your API key was refused: sign in again.");
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }

  // Runs `fn` now and every `ms` while the tab is visible; an error is shown, not thrown.
  function every(ms, fn, onError) {
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        await fn();
      } catch (e) {
        if (onError) onError(e);
      } finally {
        busy = false;
      }
    };
    tick();
    return setInterval(tick, ms);
  }

  let platformsCache = null;
  async function platforms() {
    if (!platformsCache) {
      const r = await fetch("/console/platforms.json", { cache: "no-store" });
      platformsCache = r.ok ? await r.json() : [];
    }
    return platformsCache;
  }

  function platformName(list, id) {
    const p = list.find((x) => x.id === id);
    return p ? p.name : id;
  }

  // ---- text as each platform counts it -------------------------------------------------------

  // One unit per code point, weighted as X's twitter-text does (v3: 1 for Latin and common
  // punctuation, 2 for the rest, a URL counts 23). An approximation for the preview: the check
  // through the API is exact.
  function xWeight(cp) {
    if (cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
    if (cp <= 4351 || (cp >= 8192 && cp <= 8205) || (cp >= 8208 && cp <= 8223) || (cp >= 8242 && cp <= 8247)) {
      return 1;
    }
    return 2;
  }

  // The text as [piece, units] pairs, in the platform's counting.
  function pieces(text, counting) {
    const out = [];
    const enc = new TextEncoder();
    const url = /https?:\/\/[^\s]+/g;
    let last = 0;
    const plain = (s) => {
      for (const ch of s) {
        const cp = ch.codePointAt(0);
        let n;
        if (counting === "weighted") n = xWeight(cp);
        else if (counting === "utf16") n = ch.length;
        else if (counting === "bytes") n = enc.encode(ch).length;
        else n = 1;
        out.push([ch, n]);
      }
    };
    if (counting === "weighted") {
      let m;
      while ((m = url.exec(text)) !== null) {
        plain(text.slice(last, m.index));
        out.push([m[0], 23]);
        last = m.index + m[0].length;
      }
    }
    plain(text.slice(last));
    return out;
  }

  // ---- sign in ------------------------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    window.location.assign("/?signed_out=" + (message ? "1" : "0"));
  }

  function showSignIn() {
    $("page-signin").hidden = false;
    const params = new URLSearchParams(window.location.search);
    if (params.get("signed_out") === "1") $("signin-error").textContent = "Your API key was refused: sign in again.";
    $("signin-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = $("signin-key").value.trim();
      $("signin-error").textContent = "";
      const r = await fetch("/v1/accounts", { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
      if (r.ok) {
        sessionStorage.setItem(KEY, key);
        const page = pageName();
        window.location.assign("/console/" + (page === "signin" ? "accounts" : page));
      } else if (r.status === 401) {
        $("signin-error").textContent = "This API key is unknown or revoked.";
      } else {
        let why = "HTTP " + r.status;
        try {
          const p = await r.json();
          why = p.detail || p.title || why;
        } catch (_) {
          /* not JSON */
        }
        $("signin-error").textContent = "Signing in failed: " + why;
      }
    });
    $("signin-key").focus();
  }

  // ---- accounts -----------------------------------------------------------------------------

  async function showAccounts() {
    const params = new URLSearchParams(window.location.search);
    if (params.has("connected")) {
      flash("Connected: your " + params.get("connected") + " account is below.");
      history.replaceState(null, "", "/console/accounts");
    }
    const list = await platforms();
    const buttons = $("connect-buttons");
    for (const p of list) {
      buttons.append(
        el("button", {
          type: "button",
          class: "secondary",
          "data-platform": p.id,
          onclick: (ev) => connect(p, ev.currentTarget),
          text: "Connect " + p.name,
        }),
      );
    }
    await renderAccounts(list);
  }

  async function connect(p, button) {
    button.disabled = true;
    try {
      const back = new URL("/console/accounts", window.location.origin);
      back.searchParams.set("connected", p.name);
      const start = await api("POST", "/v1/accounts/connect", { platform: p.id, return_to: back.toString() });
      window.location.assign(start.url);
    } catch (e) {
      flash("Connecting " + p.name + " failed: " + e.message, true);
      button.disabled = false;
    }
  }

  async function renderAccounts(list) {
    const accounts = await api("GET", "/v1/accounts");
    const body = $("accounts-table").tBodies[0];
    clear(body);
    $("accounts-empty").hidden = accounts.length > 0;
    for (const a of accounts) {
      const who = [a.handle ? "@" + a.handle : a.remote_id, a.display_name].filter(Boolean).join(" · ");
      const actions = el("td", {});
      if (a.status === "reauth_required") {
        actions.append(
          el("button", {
            type: "button",
            onclick: async () => {
              const start = await api("POST", "/v1/accounts/" + a.id + "/reconnect");
              window.location.assign(start.url);
            },
            text: "Reconnect",
          }),
          " ",
        );
      }
      if (a.status !== "disconnected") {
        actions.append(
          el("button", {
            type: "button",
            class: "danger",
            onclick: async () => {
              if (!window.confirm("Disconnect " + who + "? Its scheduled posts are cancelled.")) return;
              try {
                await api("DELETE", "/v1/accounts/" + a.id);
              } catch (e) {
                flash("Disconnecting failed: " + e.message, true);
              }
              await renderAccounts(list);
            },
            text: "Disconnect",
          }),
        );
      }
      body.append(
        el(
          "tr",
          { "data-account": a.id, "data-platform": a.platform },
          el("td", { text: platformName(list, a.platform) }),
          el("td", { text: who }),
          el("td", {}, el("span", { class: "state state-" + a.status, text: a.status.replace("_", " ") }), a.status_reason ? el("div", { class: "hint", text: a.status_reason }) : null),
          el("td", { text: when(a.created_at) }),
          actions,
        ),
      );
    }
  }

  // ---- compose ------------------------------------------------------------------------------

  const draft = {
    key: randomKey(), // the Idempotency-Key of this draft: a new one whenever the draft changes
    uploads: [], // {id, file, media, done, error}
    seq: 0,
    timer: null,
  };

  async function showCompose() {
    const [list, accounts] = await Promise.all([platforms(), api("GET", "/v1/accounts")]);
    const active = accounts.filter((a) => a.status === "active");
    const box = $("compose-accounts");
    $("compose-no-accounts").hidden = active.length > 0;
    for (const a of active) {
      const label = platformName(list, a.platform) + " " + (a.handle ? "@" + a.handle : a.display_name || a.remote_id);
      box.append(
        el(
          "label",
          {},
          el("input", { type: "checkbox", value: a.id, "data-platform": a.platform, checked: active.length === 1 }),
          label,
        ),
      );
    }
    const changed = () => {
      draft.key = randomKey();
      renderPreviews(list);
      scheduleValidation();
    };
    box.addEventListener("change", changed);
    $("compose-text").addEventListener("input", changed);
    $("compose-at").addEventListener("input", changed);
    $("compose-file").addEventListener("change", (ev) => {
      for (const f of ev.target.files) upload(f, list);
      ev.target.value = "";
    });
    $("compose-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit(list);
    });
    renderPreviews(list);
    scheduleValidation();
  }

  function chosenTargets() {
    return Array.from($("compose-accounts").querySelectorAll("input:checked"), (i) => ({
      account: i.value,
      platform: i.dataset.platform,
    }));
  }

  function postBody() {
    const at = $("compose-at").value;
    const body = {
      content: { text: $("compose-text").value, media: draft.uploads.filter((u) => u.media).map((u) => u.media) },
      targets: chosenTargets().map((t) => ({ account: t.account })),
    };
    if (at) body.publish_at = new Date(at).toISOString();
    return body;
  }

  function upload(file, list) {
    const item = { id: randomKey(), file, media: null, error: null };
    draft.uploads.push(item);
    const bar = el("progress", { max: 100, value: 0 });
    const status = el("span", { class: "hint", text: "uploading…" });
    const thumb = file.type.startsWith("image/") ? el("img", { alt: "", src: URL.createObjectURL(file) }) : null;
    const row = el(
      "li",
      { "data-upload": item.id },
      thumb,
      el("span", { class: "name", text: file.name }),
      bar,
      status,
      el("button", {
        type: "button",
        class: "danger",
        onclick: () => {
          if (item.xhr) item.xhr.abort();
          draft.uploads = draft.uploads.filter((u) => u !== item);
          row.remove();
          draft.key = randomKey();
          renderPreviews(list);
          scheduleValidation();
        },
        text: "Remove",
      }),
    );
    $("uploads").append(row);
    // XMLHttpRequest, not fetch: it reports the upload's progress.
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", "/v1/media");
    xhr.setRequestHeader("Authorization", "Bearer " + apiKey());
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        status.textContent = Math.round(e.loaded / 1024) + " / " + Math.round(e.total / 1024) + " KiB";
      }
    });
    xhr.addEventListener("load", () => {
      item.xhr = null;
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch (_) {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300 && data && data.media) {
        item.media = data.media;
        bar.value = 100;
        const m = data.media;
        const facts = [m.kind, m.width && m.height ? m.width + "×" + m.height : null, Math.round(file.size / 1024) + " KiB"];
        status.textContent = "uploaded · " + facts.filter(Boolean).join(" · ");
        row.classList.add("done");
      } else {
        item.error = (data && (data.detail || data.title)) || "HTTP " + xhr.status;
        status.textContent = "failed: " + item.error;
        status.className = "error";
      }
      draft.key = randomKey();
      renderPreviews(list);
      scheduleValidation();
    });
    xhr.addEventListener("error", () => {
      item.xhr = null;
      item.error = "the connection failed";
      status.textContent = "failed: the connection failed";
      status.className = "error";
    });
    xhr.send(file);
  }

  function renderPreviews(list) {
    const box = $("previews");
    clear(box);
    const text = $("compose-text").value;
    const media = draft.uploads.filter((u) => u.media).length;
    const seen = new Set();
    for (const t of chosenTargets()) {
      if (seen.has(t.platform)) continue;
      seen.add(t.platform);
      const p = list.find((x) => x.id === t.platform);
      if (!p) continue;
      let used = 0;
      let keep = "";
      let cut = "";
      for (const [piece, n] of pieces(text, p.counting)) {
        used += n;
        if (used <= p.max_text_len) keep += piece;
        else cut += piece;
      }
      const unit = p.counting === "bytes" ? " bytes" : "";
      const over = used > p.max_text_len;
      const mediaLine =
        media + " of at most " + p.max_media_per_post + " media" + (p.media_required && media === 0 ? " — this platform needs at least one" : "");
      const mediaBad = media > p.max_media_per_post || (p.media_required && media === 0);
      box.append(
        el(
          "div",
          { class: "preview", "data-platform": p.id },
          el(
            "header",
            {},
            el("span", { text: p.name }),
            el("span", { class: "count" + (over ? " over" : ""), text: used + " / " + p.max_text_len + unit }),
          ),
          el("div", { class: "text" }, keep, cut ? el("mark", { class: "cut", title: "past the limit", text: cut }) : null),
          el("div", { class: "media" + (mediaBad ? " bad" : ""), text: mediaLine }),
        ),
      );
    }
    if (!seen.size) box.append(el("p", { class: "hint", text: "Choose an account to see how each platform shows the post." }));
  }

  function scheduleValidation() {
    clearTimeout(draft.timer);
    draft.timer = setTimeout(validate, 350);
  }

  async function validate() {
    const status = $("validation-status");
    const ul = $("violations");
    const body = postBody();
    const seq = ++draft.seq;
    if (!body.targets.length) {
      clear(ul);
      status.className = "hint";
      status.textContent = "Choose an account and write something.";
      return;
    }
    if (draft.uploads.some((u) => u.xhr)) {
      status.className = "hint";
      status.textContent = "Waiting for the uploads…";
      return;
    }
    status.className = "hint";
    status.textContent = "Checking…";
    let r;
    try {
      r = await api("POST", "/v1/posts/validate", body);
    } catch (e) {
      if (seq !== draft.seq) return;
      clear(ul);
      status.className = "bad";
      status.textContent = "The check failed: " + e.message;
      return;
    }
    if (seq !== draft.seq) return; // an older answer: a newer check is on its way
    clear(ul);
    const list = await platforms();
    if (r.valid) {
      status.className = "ok";
      status.textContent = "✓ Ready for " + body.targets.length + (body.targets.length === 1 ? " account" : " accounts") + ".";
    } else {
      status.className = "bad";
      status.textContent = r.violations.length + (r.violations.length === 1 ? " problem:" : " problems:");
      for (const v of r.violations) {
        const facts = [v.limit ? "limit " + v.limit : null, v.actual ? "is " + v.actual : null].filter(Boolean).join(", ");
        ul.append(
          el(
            "li",
            { "data-code": v.code },
            el("b", { text: v.platform ? platformName(list, v.platform) + ": " : "" }),
            v.message,
            facts ? " (" + facts + ")" : "",
            " ",
            el("span", { class: "code", text: v.code }),
          ),
        );
      }
    }
  }

  async function submit(list) {
    const button = $("compose-submit");
    const result = $("compose-result");
    const body = postBody();
    result.className = "";
    if (!body.targets.length) {
      result.className = "error";
      result.textContent = "Choose at least one account.";
      return;
    }
    if (draft.uploads.some((u) => u.xhr)) {
      result.className = "error";
      result.textContent = "Wait for the uploads to finish.";
      return;
    }
    button.disabled = true;
    result.textContent = "Sending…";
    try {
      const post = await api("POST", "/v1/posts", body, { "Idempotency-Key": draft.key });
      clear(result);
      result.append(
        body.publish_at ? "Scheduled for " + when(body.publish_at) + ": " : "Sent for publishing now: ",
        el("a", { href: "/console/posts", text: "see it in Posts" }),
        " (post " + post.id + ").",
      );
      result.dataset.post = post.id;
      // A fresh draft.
      $("compose-text").value = "";
      $("compose-at").value = "";
      clear($("uploads"));
      draft.uploads = [];
      draft.key = randomKey();
      renderPreviews(list);
      scheduleValidation();
    } catch (e) {
      result.className = "error";
      result.textContent = "Not sent: " + e.message;
      const vs = (e.problem && e.problem.violations) || [];
      for (const v of vs) result.append(el("div", { text: v.message }));
    } finally {
      button.disabled = false;
    }
  }

  // ---- posts --------------------------------------------------------------------------------

  async function showPosts() {
    const [list, accounts] = await Promise.all([platforms(), api("GET", "/v1/accounts")]);
    const names = new Map(accounts.map((a) => [a.id, a.handle ? "@" + a.handle : a.display_name || a.remote_id]));
    every(
      2000,
      async () => {
        const page = await api("GET", "/v1/posts?limit=100");
        renderPosts(page.posts, list, names);
        $("posts-updated").textContent = "Updated " + clock(new Date()) + ".";
      },
      (e) => flash("Refreshing failed: " + e.message, true),
    );
  }

  function renderPosts(posts, list, names) {
    const cal = $("posts-calendar");
    clear(cal);
    $("posts-empty").hidden = posts.length > 0;
    const due = (p) => Math.min(...p.targets.map((t) => Date.parse(t.due_at)));
    const sorted = posts.filter((p) => p.targets.length).sort((a, b) => due(b) - due(a));
    let day = null;
    let box = null;
    for (const p of sorted) {
      const at = new Date(due(p));
      const label = at.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
      if (label !== day) {
        day = label;
        box = el("div", { class: "day" }, el("h2", { text: label }));
        cal.append(box);
      }
      const targets = el("div", { class: "targets" });
      for (const t of p.targets) {
        const chip = el(
          "span",
          { class: "target", "data-target": t.id, "data-state": t.state },
          platformName(list, t.platform) + " " + (names.get(t.account) || "") + " · ",
          el("span", { class: "state state-" + t.state, text: t.state.replace("_", " ") }),
        );
        if (t.url) chip.append(" · ", el("a", { href: t.url, target: "_blank", rel: "noopener noreferrer", text: "view" }));
        else if (t.remote_id) chip.append(" · " + t.remote_id);
        if (t.cancel_requested) chip.append(" · cancel asked");
        if (t.last_error && t.state !== "published") chip.append(" · ", el("span", { class: "why", text: t.last_error.message }));
        targets.append(chip);
      }
      const open = p.targets.some((t) => !FINAL.includes(t.state));
      const actions = el("div", {});
      if (open) {
        actions.append(
          el("button", {
            type: "button",
            class: "danger",
            onclick: async (ev) => {
              ev.currentTarget.disabled = true;
              try {
                await api("POST", "/v1/posts/" + p.id + "/cancel");
              } catch (e) {
                flash("Cancelling failed: " + e.message, true);
              }
            },
            text: "Cancel",
          }),
        );
      }
      box.append(
        el(
          "div",
          { class: "post", "data-post": p.id },
          el("div", { class: "time", text: clock(at) }),
          el("div", {}, el("div", { class: "id", text: "post " + p.id }), targets),
          actions,
        ),
      );
    }
  }

  // ---- webhooks -----------------------------------------------------------------------------

  const eventKinds = new Map(); // event id -> kind, read from /v1/events
  let eventsCursor = 0;

  async function readEvents() {
    for (let i = 0; i < 20; i++) {
      const page = await api("GET", "/v1/events?limit=500&after=" + eventsCursor);
      for (const e of page.events) eventKinds.set(e.id, e.type);
      if (!page.events.length || page.next_cursor === eventsCursor) return;
      eventsCursor = page.next_cursor;
    }
  }

  async function showWebhooks() {
    $("webhook-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("webhook-error").textContent = "";
      const events = $("webhook-events")
        .value.split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      try {
        const created = await api("POST", "/v1/webhooks", { url: $("webhook-url").value.trim(), events });
        $("webhook-secret-value").textContent = created.secret;
        $("webhook-secret").hidden = false;
        $("webhook-url").value = "";
        $("webhook-events").value = "";
        await renderEndpoints();
      } catch (e) {
        $("webhook-error").textContent = "Not added: " + e.message;
      }
    });
    await renderEndpoints();
    every(
      3000,
      async () => {
        await readEvents();
        await renderDeliveries();
        $("deliveries-updated").textContent = "Updated " + clock(new Date()) + ".";
      },
      (e) => flash("Refreshing failed: " + e.message, true),
    );
  }

  let endpoints = [];
  async function renderEndpoints() {
    endpoints = await api("GET", "/v1/webhooks");
    const body = $("webhooks-table").tBodies[0];
    clear(body);
    for (const w of endpoints) {
      body.append(
        el(
          "tr",
          { "data-webhook": w.id },
          el("td", { text: w.url }),
          el("td", { text: w.events.length ? w.events.join(", ") : "all" }),
          el("td", { text: when(w.created_at) }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "danger",
              onclick: async () => {
                if (!window.confirm("Remove the endpoint " + w.url + "?")) return;
                try {
                  await api("DELETE", "/v1/webhooks/" + w.id);
                } catch (e) {
                  flash("Removing failed: " + e.message, true);
                }
                await renderEndpoints();
              },
              text: "Remove",
            }),
          ),
        ),
      );
    }
  }

  async function renderDeliveries() {
    const deliveries = await api("GET", "/v1/webhooks/deliveries?limit=100");
    const body = $("deliveries-table").tBodies[0];
    clear(body);
    for (const d of deliveries) {
      const w = endpoints.find((x) => x.id === d.webhook_id);
      const answer = [d.last_status ? "HTTP " + d.last_status : null, d.last_error].filter(Boolean).join(" · ");
      const extra = d.state === "pending" && d.next_attempt_at ? "next " + clock(new Date(d.next_attempt_at)) : d.delivered_at ? "at " + clock(new Date(d.delivered_at)) : "";
      body.append(
        el(
          "tr",
          { "data-delivery": d.id, "data-state": d.state },
          el("td", { text: when(d.created_at) }),
          el("td", {}, el("div", { text: eventKinds.get(d.event_id) || "event" }), el("div", { class: "hint", text: d.event_id })),
          el("td", { text: w ? w.url : d.webhook_id }),
          el("td", {}, el("span", { class: "state state-" + d.state, text: d.state }), extra ? el("div", { class: "hint", text: extra }) : null),
          el("td", { text: String(d.attempts) }),
          el("td", { text: answer }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "secondary",
              onclick: async (ev) => {
                ev.currentTarget.disabled = true;
                try {
                  await api("POST", "/v1/webhooks/deliveries/" + encodeURIComponent(d.id) + "/replay");
                  flash("Replay queued.");
                } catch (e) {
                  flash("Replaying failed: " + e.message, true);
                }
              },
              text: "Replay",
            }),
          ),
        ),
      );
    }
  }

  // ---- start --------------------------------------------------------------------------------

  function pageName() {
    const m = window.location.pathname.match(/^\/console\/([a-z]+)$/);
    return m && PAGES.includes(m[1]) ? m[1] : "accounts";
  }

  async function start() {
    if (!apiKey()) {
      showSignIn();
      return;
    }
    const page = pageName();
    $("nav").hidden = false;
    $("sign-out").hidden = false;
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      window.location.assign("/");
    });
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", a.dataset.page === page);
    $("page-" + page).hidden = false;
    document.title = page.charAt(0).toUpperCase() + page.slice(1) + " · konektly console";
    const show = { accounts: showAccounts, compose: showCompose, posts: showPosts, webhooks: showWebhooks }[page];
    try {
      await show();
    } catch (e) {
      flash("Loading failed: " + e.message, true);
    }
    document.body.dataset.ready = page;
  }

  document.addEventListener("DOMContentLoaded", start);
})();
