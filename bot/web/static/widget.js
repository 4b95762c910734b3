/* supportbot chat widget: one <script src=".../static/widget.js" defer></script>, no build step.
 * Keeps the conversation id across reloads, restores history, shows typing and quick-reply
 * buttons, retries a failed send with the same message id (the server answers it once), and only
 * ever writes text with textContent (customer and bot text can never become markup).
 * While its WebSocket is open it sends over it, so a generated answer appears as it is written
 * ("delta" frames, each a checked sentence) and is then replaced by the final reply with its
 * sources line; without the socket (or if it drops mid-answer) it posts to the REST API.
 * Its own strings come from message catalogs beside it (i18n/<locale>.json; English fills any key
 * a catalog lacks), with the company's own over them where the domain file or its translation
 * overlay has them in the language shown (GET /api/v1/widget?lang=). The locale: the tag's
 * data-lang, else the page's <html lang>, else the browser's languages; the first one with a
 * catalog wins, else English. Enter sends, except while an IME composes. */
(function () {
  "use strict";
  if (window.SupportBotWidget) return;
  var script = document.currentScript;
  var server = (script && script.getAttribute("data-server")) ||
    (script ? new URL(script.src, location.href).origin : location.origin);
  var storageKey = "supportbot.conversation." + server;
  var openKey = "supportbot.open." + server;
  var tokenKey = "supportbot.token." + server;  /* the secret that owns the conversation */
  var catalogBase = new URL("i18n/", (script && script.src) || server + "/static/widget.js").href;

  /* A language tag -> the catalog for it, or null. Simplified Chinese (zh, zh-CN, zh-Hans, zh-SG,
   * zh-MY) is zh-CN; Traditional (zh-TW, zh-HK, zh-Hant) has no catalog yet. */
  function catalogFor(tag) {
    var parts = String(tag || "").trim().replace(/_/g, "-").toLowerCase().split("-");
    if (parts[0] === "en") return "en";
    if (parts[0] === "zh" && (parts.length === 1 || /^(cn|sg|my|hans)$/.test(parts[1]))) return "zh-CN";
    return null;
  }
  function chooseLocale() {
    var wanted = [script && script.getAttribute("data-lang"), document.documentElement.getAttribute("lang")]
      .concat(Array.prototype.slice.call(navigator.languages || []), [navigator.language]);
    for (var i = 0; i < wanted.length; i++) { var found = catalogFor(wanted[i]); if (found) return found; }
    return "en";
  }
  var locale = chooseLocale();

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return (Date.now().toString(36) + Math.random().toString(36).slice(2)).slice(0, 32);
  }
  function storedConversation() {
    var id = localStorage.getItem(storageKey), token = localStorage.getItem(tokenKey);
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id) || !token || !/^[A-Za-z0-9_-]{16,128}$/.test(token)) return null;
    return { id: id, token: token };
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var CSS = [
    ":host{all:initial;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;",
    "padding:12px 18px;background:#8a4b2f;color:#fff;font-size:15px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);",
    "height:480px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;display:none;flex-direction:column;",
    "box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden}",
    ".panel.open{display:flex}",
    ".head{background:#8a4b2f;color:#fff;padding:12px 14px;display:flex;justify-content:space-between;align-items:center}",
    ".head b{font-size:15px}.head small{display:block;opacity:.85;font-size:12px}",
    ".close{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#faf7f4;font-size:14px;line-height:1.4}",
    ".msg{max-width:85%;margin:6px 0;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".bot{background:#fff;border:1px solid #e6ddd5;color:#222}",
    ".user{background:#8a4b2f;color:#fff;margin-left:auto}",
    ".agent{background:#e9f2ec;border:1px solid #c9dfcf;color:#1d3b26}",
    ".agent-name{display:block;font-size:11px;font-weight:600;margin-bottom:2px}",
    ".system{background:none;color:#666;font-size:12px;text-align:center;margin:8px auto}",
    ".error{background:#fdecea;color:#8a1c1c;border:1px solid #f5c2c0}",
    ".buttons{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 8px}",
    ".buttons button{border:1px solid #8a4b2f;background:#fff;color:#8a4b2f;border-radius:14px;padding:5px 10px;cursor:pointer;font-size:13px}",
    ".typing{font-size:12px;color:#777;padding:0 12px 6px;min-height:16px;background:#faf7f4}",
    ".sources{display:block;margin-top:6px;padding-top:4px;border-top:1px solid #eee;font-size:12px;color:#6b6b6b}",
    ".streaming{border-style:dashed}",
    "form{display:flex;border-top:1px solid #eee}",
    "textarea{flex:1;border:0;padding:10px;font:inherit;font-size:14px;resize:none;height:40px}",
    "form button{border:0;background:#8a4b2f;color:#fff;padding:0 16px;cursor:pointer;font-size:14px}"
  ].join("");

  /* The English catalog, the locale's over it, the domain's strings over both when they are in this
   * language. With no catalog at all a string is its key: plain, but the widget still works. */
  var strings = {};
  function t(key, values) {
    var text = typeof strings[key] === "string" ? strings[key] : key;
    return text.replace(/\{(\w+)\}/g, function (m, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : m;
    });
  }
  function optional(key) { return typeof strings[key] === "string" ? strings[key] : ""; }
  function merge(catalog) {
    Object.keys(catalog || {}).forEach(function (k) {
      if (k !== "language" && typeof catalog[k] === "string") strings[k] = catalog[k];
    });
  }
  function getJSON(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (data) { return (data && typeof data === "object") ? data : {}; });
  }
  function loadStrings() {
    function catalog(name) { return getJSON(catalogBase + name + ".json").catch(function () { return null; }); }
    function domain(lang) {
      return getJSON(server + "/api/v1/widget?lang=" + encodeURIComponent(lang)).catch(function () { return {}; });
    }
    var en = catalog("en");
    var own = locale === "en" ? en : catalog(locale);
    return Promise.all([en, own, domain(locale)]).then(function (got) {
      merge(got[0]);
      if (got[1] !== got[0]) {
        if (got[1]) merge(got[1]);
        else { locale = "en"; return domain("en").then(function (d) { got[2] = d; return got; }); }
      }
      return got;
    }).then(function (got) {  /* the domain's words, where they are in the language shown */
      if (catalogFor(got[2].language || "en") === locale) merge(got[2]);
    });
  }

  var host = el("div", { id: "supportbot-widget", lang: locale });
  var root = host.attachShadow({ mode: "open" });
  var style = el("style"); style.textContent = CSS; root.appendChild(style);
  var launcher = el("button", { "class": "launcher", "data-sb": "launcher", type: "button" });
  var panel = el("div", { "class": "panel", "data-sb": "panel", role: "dialog" });
  var head = el("div", { "class": "head" });
  var titleBox = el("div");
  var title = el("b"); var subtitle = el("small");
  titleBox.appendChild(title); titleBox.appendChild(subtitle);
  var close = el("button", { "class": "close", type: "button", "data-sb": "close" }, "×");
  head.appendChild(titleBox); head.appendChild(close);
  var log = el("div", { "class": "log", "data-sb": "messages", "aria-live": "polite" });
  var typing = el("div", { "class": "typing", "data-sb": "typing" });
  var form = el("form", { "data-sb": "form" });
  var input = el("textarea", { "data-sb": "input", rows: "1", maxlength: "2000" });
  var send = el("button", { type: "submit", "data-sb": "send" });
  form.appendChild(input); form.appendChild(send);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(launcher);

  function applyStrings() {
    host.setAttribute("lang", locale);
    title.textContent = t("title"); subtitle.textContent = optional("subtitle");
    input.setAttribute("placeholder", t("placeholder")); input.setAttribute("aria-label", t("input_label"));
    send.textContent = t("send"); launcher.textContent = t("open_label");
    close.setAttribute("aria-label", t("close_label")); panel.setAttribute("aria-label", t("title"));
    log.setAttribute("aria-label", t("messages_label"));
  }
  function errorText(data) {  /* the server's detail is English for developers: ours, by its code */
    var code = (data && typeof data.error === "string") ? data.error : "";
    return (code && typeof strings["error_" + code] === "string") ? strings["error_" + code] : t("error");
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function clearButtons() {
    Array.prototype.forEach.call(log.querySelectorAll(".buttons"), function (b) { b.remove(); });
  }
  function addMessage(role, text, who) {
    var node = el("div", { "class": "msg " + role, "data-sb": "msg-" + role });
    if (who) node.appendChild(el("span", { "class": "agent-name" }, who));
    node.appendChild(document.createTextNode(text));
    log.appendChild(node); scroll(); return node;
  }
  function addButtons(buttons) {
    if (!buttons || !buttons.length) return;
    var box = el("div", { "class": "buttons", "data-sb": "buttons" });
    buttons.forEach(function (b) {
      var btn = el("button", { type: "button" }, b.title);
      btn.addEventListener("click", function () { clearButtons(); sendMessage(b.title, b.payload); });
      box.appendChild(btn);
    });
    log.appendChild(box); scroll();
  }
  /* A reply with sources ends with its sources line (after a blank line): shown apart. */
  function fillReply(node, r) {
    var text = r.text, line = null;
    var cut = text.lastIndexOf("\n\n");
    if (r.sources && r.sources.length && cut > 0) { line = text.slice(cut + 2); text = text.slice(0, cut); }
    node.textContent = "";
    node.classList.remove("streaming");
    node.appendChild(document.createTextNode(text));
    if (line) node.appendChild(el("span", { "class": "sources", "data-sb": "sources" }, line));
  }
  function showReplies(replies, withButtons, bubble) {
    replies.forEach(function (r, i) {
      var node = (i === 0 && bubble) ? bubble : addMessage("bot", "");
      fillReply(node, r); scroll();
      if (withButtons) addButtons(r.buttons);
    });
    if (bubble && !replies.length) bubble.remove();
  }

  var stored = storedConversation();
  var cid = stored ? stored.id : null, token = stored ? stored.token : null;
  /* A conversation is the server's: it issues the id and the token that alone reads and writes it. */
  function newConversation() {
    return fetch(server + "/api/v1/conversations", { method: "POST" }).then(function (res) {
      if (!res.ok) throw new Error("no conversation");
      return res.json();
    }).then(function (data) {
      cid = data.conversation_id; token = data.conversation_token;
      localStorage.setItem(storageKey, cid); localStorage.setItem(tokenKey, token);
    });
  }
  var busy = false;
  var live = null;      /* the open WebSocket, when there is one */
  var pending = {};     /* message id -> the socket send waiting for its replies */

  function viaSocket(body) {
    return new Promise(function (resolve, reject) {
      var entry = { resolve: resolve, reject: reject, bubble: null };
      entry.timer = setTimeout(function () { delete pending[body.message_id]; reject(new Error("timeout")); }, 60000);
      pending[body.message_id] = entry;
      try { live.send(JSON.stringify(body)); } catch (e) {
        clearTimeout(entry.timer); delete pending[body.message_id]; reject(e);
      }
    });
  }
  function onTurnFrame(ev) {
    var entry = pending[ev.message_id];
    if (!entry) return false;
    if (ev.type === "delta") {
      typing.textContent = "";
      if (!entry.bubble) { entry.bubble = addMessage("bot", ""); entry.bubble.classList.add("streaming"); }
      entry.bubble.appendChild(document.createTextNode(ev.text)); scroll();
    } else if (ev.type === "replies" || ev.type === "error") {
      clearTimeout(entry.timer); delete pending[ev.message_id];
      entry.resolve(ev.type === "replies" ? { ok: true, data: ev, bubble: entry.bubble }
                                          : { ok: false, data: ev, bubble: entry.bubble });
    }
    return true;
  }
  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ "X-Conversation-Token": token || "" }, options.headers || {});
    return fetch(server + "/api/v1" + path, options);
  }

  function post(body, attempt) {
    return api("/conversations/" + cid + "/messages", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (res) {
      if ((res.status === 503 || res.status === 502) && attempt < 3) {
        return new Promise(function (ok) { setTimeout(ok, 500 * (attempt + 1)); })
          .then(function () { return post(body, attempt + 1); });
      }
      return res.json().then(function (data) { return { ok: res.ok, data: data }; });
    }, function (err) {
      if (attempt < 3) {
        return new Promise(function (ok) { setTimeout(ok, 500 * (attempt + 1)); })
          .then(function () { return post(body, attempt + 1); });
      }
      throw err;
    });
  }

  function sendMessage(text, payload) {
    text = (text || "").trim();
    if ((!text && !payload) || busy || !cid) return;
    busy = true; clearButtons();
    addMessage("user", text || payload);
    typing.textContent = t("typing");
    var body = { message_id: newId() };
    if (payload) body.payload = payload; else body.text = text;
    var sent = (live && live.readyState === 1)
      ? viaSocket(body).catch(function () { return post(body, 0); })  /* same id: answered once */
      : post(body, 0);
    sent.then(function (r) {
      if (r.ok && r.data.conversation_token && r.data.conversation_id === cid) {
        token = r.data.conversation_token; localStorage.setItem(tokenKey, token);
      }
      if (r.ok) showReplies(r.data.replies, true, r.bubble);
      else {
        if (r.bubble) r.bubble.remove();
        addMessage("error", errorText(r.data));
      }
    }, function () { addMessage("error", t("error")); })
      .then(function () {
        busy = false; typing.textContent = ""; input.focus();
        if (needResync) { needResync = false; resync(); }
      });
  }

  function setOpen(open) {
    panel.classList.toggle("open", open);
    localStorage.setItem(openKey, open ? "1" : "0");
    if (open) input.focus();
  }
  launcher.addEventListener("click", function () { setOpen(!panel.classList.contains("open")); });
  close.addEventListener("click", function () { setOpen(false); });
  form.addEventListener("submit", function (e) {
    e.preventDefault(); var text = input.value; input.value = ""; sendMessage(text);
  });
  /* Enter sends, Shift+Enter is a new line, and an Enter that an input method (pinyin, kana...)
   * uses to commit its composition sends nothing: isComposing, keyCode 229 where that is missing,
   * and our own composition flag; Safari fires the committing Enter's keydown just after
   * compositionend, so an Enter in the same tick as compositionend is the IME's too. */
  var composing = false, justComposed = false;
  input.addEventListener("compositionstart", function () { composing = true; });
  input.addEventListener("compositionend", function () {
    composing = false; justComposed = true;
    setTimeout(function () { justComposed = false; }, 0);
  });
  input.addEventListener("blur", function () { composing = false; });
  input.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || e.shiftKey) return;
    if (e.isComposing || e.keyCode === 229 || composing || justComposed) return;
    e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
  });

  function restore() {
    if (!cid) return newConversation().then(greet, function () {});
    return api("/conversations/" + cid).then(function (res) {
      if (res.status === 404) { return newConversation().then(greet, function () {}); }  /* expired */
      if (!res.ok) return;
      return res.json().then(function (data) {
        if (optional("greeting")) addMessage("bot", optional("greeting"));
        var last = null;
        data.history.forEach(function (e) {
          var role = (e.role === "user" || e.role === "agent" || e.role === "system") ? e.role : "bot";
          addMessage(role, e.text, role === "agent" ? e.agent : null); last = e;
        });
        if (last && last.role === "bot") addButtons(last.buttons);
      });
    }).catch(function () {});
  }

  function greet() { if (optional("greeting")) addMessage("bot", optional("greeting")); }

  /* After a Redis restart the server subscribes again and says "resync": what was published in
   * between is only in the stored conversation, so the log is drawn again from it. */
  var needResync = false;
  function resync() {
    if (busy) { needResync = true; return; }
    while (log.firstChild) log.removeChild(log.firstChild);
    restore();
  }

  /* Live events from the team (agent joined, agent messages, typing, back to the bot). */
  var typingTimer = null;
  function listen(delay) {
    var url = server.replace(/^http/, "ws") + "/api/v1/conversations/" + (cid || "") + "/ws";
    var ws;
    if (!cid || !token) { setTimeout(function () { listen(delay); }, delay || 1000); return; }
    try { ws = new WebSocket(url, ["supportbot", "token." + token]); } catch (e) { return; }
    ws.onopen = function () { delay = 1000; live = ws; host.setAttribute("data-live", "1"); };
    ws.onmessage = function (m) {
      var ev; try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.message_id && onTurnFrame(ev)) return;
      if (ev.type === "agent_joined") addMessage("system", ev.text);
      else if (ev.type === "agent_message") { typing.textContent = ""; addMessage("agent", ev.text, ev.agent); }
      else if (ev.type === "agent_typing") {
        typing.textContent = t("agent_typing", { agent: ev.agent || "" }); clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typing.textContent = ""; }, 5000);
      } else if (ev.type === "bot_back" || ev.type === "closed") addMessage("bot", ev.text);
      else if (ev.type === "resync") resync();
    };
    ws.onclose = function () {
      if (live === ws) live = null;
      Object.keys(pending).forEach(function (id) {  /* finish them over REST, same message id */
        var entry = pending[id]; delete pending[id]; clearTimeout(entry.timer);
        if (entry.bubble) entry.bubble.remove();
        entry.reject(new Error("socket closed"));
      });
      host.removeAttribute("data-live");
      setTimeout(function () { listen(Math.min((delay || 1000) * 2, 30000)); }, delay || 1000);
    };
  }

  function mount() {
    document.body.appendChild(host);
    loadStrings().catch(function () {}).then(applyStrings)
      .then(restore)
      .then(function () {
        if (localStorage.getItem(openKey) === "1") setOpen(true);
        host.setAttribute("data-ready", "1");
        listen(1000);
      });
  }
  window.SupportBotWidget = { open: function () { setOpen(true); }, conversationId: function () { return cid; },
                              locale: function () { return locale; } };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount); else mount();
})();
