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
    "button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #1a56c4;outline-offset:2px}",
    "textarea:focus-visible{outline-offset:-3px}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;min-height:48px;",
    "padding:12px 18px;background:#8a4b2f;color:#fff;font-size:15px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".badge{display:inline-block;min-width:20px;margin-left:8px;padding:1px 6px;border-radius:10px;background:#fff;color:#8a1c1c;font-size:12px;font-weight:700;text-align:center}",
    ".badge[hidden]{display:none}",
    ".panel{position:fixed;right:20px;bottom:80px;z-index:2147483000;width:360px;max-width:calc(100vw - 40px);",
    "height:540px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;display:none;flex-direction:column;",
    "box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden}",
    ".panel.open{display:flex}",
    ".head{background:#8a4b2f;color:#fff;padding:8px 6px 8px 14px;display:flex;align-items:center;gap:4px}",
    ".head .titles{flex:1;min-width:0}.head b{font-size:15px;display:block}.head small{display:block;font-size:12px;line-height:1.3}",
    ".head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;min-width:44px;min-height:44px;border-radius:8px}",
    ".head button:focus-visible{outline:3px solid #fff;outline-offset:-3px}",
    ".banner{background:#fff4d6;color:#5c4300;font-size:13px;padding:6px 12px;border-bottom:1px solid #e8d9a8}",
    ".banner[hidden]{display:none}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#faf7f4;font-size:14px;line-height:1.4}",
    ".row{display:flex;flex-direction:column;margin:6px 0}",
    ".row.from-user{align-items:flex-end}",
    ".msg{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    ".msg ul{margin:4px 0;padding-left:18px;white-space:normal}.msg li{margin:2px 0}",
    ".msg a{color:inherit;text-decoration:underline}",
    ".bot{background:#fff;border:1px solid #e6ddd5;color:#222}",
    ".user{background:#8a4b2f;color:#fff}",
    ".agent{background:#e9f2ec;border:1px solid #c9dfcf;color:#1d3b26}",
    ".agent-name{display:block;font-size:11px;font-weight:600;margin-bottom:2px}",
    ".system{background:none;color:#595959;font-size:12px;text-align:center;margin:0 auto}",
    ".error{background:#fdecea;color:#8a1c1c;border:1px solid #f5c2c0}",
    ".meta{display:flex;align-items:center;gap:6px;font-size:11px;color:#595959;margin-top:2px;padding:0 4px}",
    ".meta .failed{color:#a3160e;font-weight:600}",
    ".meta button{border:1px solid #c9bfb6;background:#fff;color:#3d3d3d;border-radius:12px;padding:2px 8px;cursor:pointer;font-size:12px;min-height:28px;min-width:28px}",
    ".meta button[aria-pressed=true]{background:#8a4b2f;color:#fff;border-color:#8a4b2f}",
    ".meta .retry{color:#8a1c1c;border-color:#8a1c1c}",
    ".votes{display:inline-flex;align-items:center;gap:4px}",
    ".buttons{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 8px}",
    ".buttons button{border:1px solid #8a4b2f;background:#fff;color:#8a4b2f;border-radius:14px;padding:5px 10px;cursor:pointer;font-size:13px}",
    ".typing{font-size:12px;color:#595959;padding:0 12px 6px;min-height:16px;background:#faf7f4}",
    ".typing.slow{color:#7a4a00}",
    ".sources{display:block;margin-top:6px;padding-top:4px;border-top:1px solid #eee;font-size:12px;color:#5f5f5f}",
    ".streaming{border-style:dashed}",
    ".contact{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:8px 12px;border-top:1px solid #eee;background:#fff;font-size:13px;color:#333}",
    ".contact[hidden]{display:none}",
    ".contact p{margin:0;width:100%}",
    ".contact input{flex:1;min-width:0;font:inherit;font-size:16px;padding:6px 8px;border:1px solid #8c8c8c;border-radius:6px;min-height:32px}",
    ".contact button{border:0;background:#8a4b2f;color:#fff;border-radius:6px;padding:6px 12px;cursor:pointer;font-size:14px;min-height:34px}",
    ".contact .note{color:#8a1c1c;width:100%}",
    "form.compose{display:flex;border-top:1px solid #eee;background:#fff}",
    "form.compose .attach{background:#fff;color:#6b3a24;min-width:44px;padding:0 10px;border-right:1px solid #eee}",
    "form.compose .attach svg{width:22px;height:22px;vertical-align:middle;fill:none;stroke:currentColor;stroke-width:2}",
    "form.compose .attach[hidden]{display:none}",
    ".photo{display:block;max-width:100%;height:auto;border-radius:8px;margin-top:2px;background:#eee}",
    ".msg.user .photo{max-height:220px;width:auto}",
    ".rating{margin:8px 0;padding:10px 12px;background:#fff;border:1px solid #e6ddd5;border-radius:12px;font-size:14px;color:#222}",
    ".rating p{margin:0 0 6px}",
    ".rating fieldset{border:0;margin:0 0 6px;padding:0;display:flex;gap:2px}",
    ".rating legend{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    ".rating label{cursor:pointer;display:inline-flex;align-items:center;justify-content:center;min-width:36px;min-height:36px;border-radius:8px}",
    ".rating input{position:absolute;opacity:0;width:1px;height:1px}",
    ".rating label span{font-size:26px;line-height:1;color:#767676}",
    ".rating label.on span{color:#b35c00}",
    ".rating input:focus-visible+span{outline:3px solid #1a56c4;outline-offset:2px;border-radius:4px}",
    ".rating textarea{display:block;width:100%;box-sizing:border-box;height:56px;border:1px solid #8c8c8c;border-radius:6px;padding:6px 8px;font:inherit;font-size:16px;margin-bottom:6px}",
    ".rating button{border:0;background:#8a4b2f;color:#fff;border-radius:6px;padding:6px 12px;cursor:pointer;font-size:14px;min-height:34px}",
    ".rating button:disabled{background:#b7a69b;cursor:default}",
    ".rating .note{color:#8a1c1c;margin:4px 0 0}",
    "textarea{flex:1;border:0;padding:12px 10px;font:inherit;font-size:16px;resize:none;height:44px;box-sizing:border-box}",
    "form.compose button{border:0;background:#8a4b2f;color:#fff;padding:0 16px;cursor:pointer;font-size:14px;min-width:60px;min-height:44px}",
    "@media (max-width:480px),(max-height:500px){",
    ".panel{left:0;top:0;right:0;bottom:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0}",
    ".panel.open~.launcher{display:none}",
    ".buttons button,.meta button,.contact button,.contact input,.rating button,.rating label{min-height:44px;min-width:44px}",
    ".msg{max-width:90%}}",
    "@media (max-height:500px){.head small,.contact p:first-child{display:none}}"
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
  var launcher = el("button", { "class": "launcher", "data-sb": "launcher", type: "button",
                                "aria-expanded": "false", "aria-controls": "sb-panel" });
  var launcherText = el("span");
  var badge = el("span", { "class": "badge", "data-sb": "badge", hidden: "" });
  launcher.appendChild(launcherText); launcher.appendChild(badge);
  var panel = el("div", { "class": "panel", "data-sb": "panel", role: "dialog", id: "sb-panel" });
  var head = el("div", { "class": "head" });
  var titleBox = el("div", { "class": "titles" });
  var title = el("b"); var subtitle = el("small", { "data-sb": "subtitle" });
  titleBox.appendChild(title); titleBox.appendChild(subtitle);
  var restart = el("button", { type: "button", "data-sb": "new" }, "\u270E");
  var close = el("button", { "class": "close", type: "button", "data-sb": "close" }, "\u00D7");
  head.appendChild(titleBox); head.appendChild(restart); head.appendChild(close);
  var banner = el("div", { "class": "banner", "data-sb": "banner", role: "status", hidden: "" });
  var log = el("div", { "class": "log", "data-sb": "messages", role: "log", "aria-live": "polite", tabindex: "0" });
  var typing = el("div", { "class": "typing", "data-sb": "typing", "aria-live": "polite" });
  var contact = el("form", { "class": "contact", "data-sb": "contact", hidden: "", novalidate: "" });
  var contactText = el("p");
  var contactInput = el("input", { type: "email", "data-sb": "email", autocomplete: "email", maxlength: "254" });
  var contactSave = el("button", { type: "submit", "data-sb": "email-save" });
  var contactNote = el("p", { "class": "note", "data-sb": "email-note", role: "alert" });
  contact.appendChild(contactText); contact.appendChild(contactInput); contact.appendChild(contactSave);
  contact.appendChild(contactNote);
  var form = el("form", { "class": "compose", "data-sb": "form" });
  var input = el("textarea", { "data-sb": "input", rows: "1", maxlength: "2000" });
  var send = el("button", { type: "submit", "data-sb": "send" });
  var attach = el("button", { type: "button", "class": "attach", "data-sb": "attach", hidden: "" });
  (function () {  /* a camera icon, built as DOM like everything else */
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    var body = document.createElementNS(ns, "path"); body.setAttribute("d", "M4 8h3l2-3h6l2 3h3v11H4z");
    var lens = document.createElementNS(ns, "circle");
    lens.setAttribute("cx", "12"); lens.setAttribute("cy", "13"); lens.setAttribute("r", "3.5");
    svg.appendChild(body); svg.appendChild(lens); attach.appendChild(svg);
  })();
  var picker = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", "data-sb": "file",
                             hidden: "", tabindex: "-1", "aria-hidden": "true" });
  form.appendChild(attach); form.appendChild(picker); form.appendChild(input); form.appendChild(send);
  panel.appendChild(head); panel.appendChild(banner); panel.appendChild(log); panel.appendChild(typing);
  panel.appendChild(contact); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(launcher);

  function optionalOr(key, fallback) { return optional(key) || optional(fallback); }
  function applyStrings() {
    host.setAttribute("lang", locale);
    title.textContent = t("title"); showAvailability();
    input.setAttribute("placeholder", t("placeholder")); input.setAttribute("aria-label", t("input_label"));
    send.textContent = t("send"); launcherText.textContent = t("open_label"); showUnread();
    close.setAttribute("aria-label", t("close_label")); panel.setAttribute("aria-label", t("title"));
    restart.setAttribute("aria-label", optional("new_conversation") || "+");
    restart.setAttribute("title", optional("new_conversation"));
    log.setAttribute("aria-label", t("messages_label"));
    banner.textContent = optional("reconnecting");
    contactText.textContent = optional("email_prompt");
    contactInput.setAttribute("placeholder", optional("email_placeholder"));
    contactInput.setAttribute("aria-label", optional("email_placeholder") || "e-mail");
    contactSave.textContent = optional("email_submit");
    if (optional("attach_label")) {  /* a photo needs its words: the button's name */
      attach.setAttribute("aria-label", optional("attach_label")); attach.setAttribute("title", optional("attach_label"));
      attach.removeAttribute("hidden");
    }
  }
  /* A photo refused for its size or type by the transport says so in the photo's words. */
  function photoError(data) {
    var code = data && data.error;
    var photo = { body_too_large: "image_too_large", unsupported_media_type: "unsupported_image_type" }[code];
    return photo ? { error: photo } : data;
  }
  function errorText(data) {  /* the server's detail is English for developers: ours, by its code */
    var code = (data && typeof data.error === "string") ? data.error : "";
    return (code && typeof strings["error_" + code] === "string") ? strings["error_" + code] : t("error");
  }

  /* --- the message log ------------------------------------------------------------------------ */
  function scroll() { log.scrollTop = log.scrollHeight; }
  /* Kept at the newest message while the list changes size (banner, e-mail field, keyboard), unless
   * the customer scrolled up to read. */
  var stick = true;
  log.addEventListener("scroll", function () { stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8; });
  if (window.ResizeObserver) new ResizeObserver(function () { if (stick) scroll(); }).observe(log);
  function clearButtons() {
    Array.prototype.forEach.call(log.querySelectorAll(".buttons"), function (b) { b.remove(); });
  }
  /* Text into `node` as DOM: http(s) and mailto links (bare or [text](url)) and, with `rich`,
   * **bold** and "- " bullet lists. Never markup: every piece of text is a text node. */
  var INLINE = /\[([^\]\n]{1,300})\]\(((?:https?:\/\/|mailto:)[^\s)]{1,2000})\)|\*\*([^*\n]{1,500})\*\*|((?:https?:\/\/|mailto:)[^\s<>"']{1,2000})/g;
  function safeHref(url) {
    try {
      var u = new URL(url);
      return (u.protocol === "http:" || u.protocol === "https:" || u.protocol === "mailto:") ? u.href : null;
    } catch (e) { return null; }
  }
  function link(text, url) {
    var href = safeHref(url);
    if (!href) return document.createTextNode(text);
    var a = el("a", { href: href, target: "_blank", rel: "noopener noreferrer nofollow" }, text);
    return a;
  }
  function inline(parent, text, rich) {
    var last = 0, m, re = new RegExp(INLINE.source, "g");  /* its own: bold recurses */
    while ((m = re.exec(text)) !== null) {
      if (m[3] !== undefined && !rich) continue;
      if (m[1] !== undefined && !rich) continue;
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) parent.appendChild(link(m[1], m[2]));
      else if (m[3] !== undefined) { var b = el("strong"); inline(b, m[3], false); parent.appendChild(b); }
      else {
        var url = m[4].replace(/[.,;:!?]+$/, "");  /* a sentence's full stop is not part of the link */
        parent.appendChild(link(url, url));
        if (url.length < m[4].length) parent.appendChild(document.createTextNode(m[4].slice(url.length)));
      }
      last = re.lastIndex;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function render(node, text, rich) {
    if (!rich) { inline(node, text, false); return; }
    var lines = String(text).split("\n"), list = null, buffer = [];
    function flushText() {
      if (buffer.length) { inline(node, buffer.join("\n"), true); buffer = []; }
    }
    lines.forEach(function (line) {
      var item = /^\s*[-*\u2022]\s+(.*)$/.exec(line);
      if (item) {
        flushText();
        if (!list) { list = el("ul"); node.appendChild(list); }
        var li = el("li"); inline(li, item[1], true); list.appendChild(li);
      } else {
        list = null;
        buffer.push(line);
      }
    });
    flushText();
  }
  function clock(at) {
    var d = new Date((at || Date.now() / 1000) * 1000);
    try { return d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" }); }
    catch (e) { return d.toTimeString().slice(0, 5); }
  }
  var unread = 0, baseTitle = document.title;
  function isOpen() { return panel.classList.contains("open"); }
  function showUnread() {
    badge.textContent = unread ? String(unread) : "";
    if (unread) badge.removeAttribute("hidden"); else badge.setAttribute("hidden", "");
    /* the visible words first (the accessible name contains them), then the count */
    if (unread) launcher.setAttribute("aria-label", launcherText.textContent + " " + badge.textContent + ", " +
                                      t("unread", { count: unread }));
    else launcher.removeAttribute("aria-label");
    document.title = unread ? "(" + unread + ") " + baseTitle : baseTitle;
  }
  function arrived() {  /* a message from the bot or the team: counted while the panel is closed */
    if (isOpen()) return;
    unread += 1; showUnread();
  }
  /* One message: a row with its bubble (data-sb=msg-<role>, the text only) and a meta line (time,
   * and for the customer's own messages the send state; for answers the thumbs). */
  function addMessage(role, text, who, at) {
    var row = el("div", { "class": "row from-" + role, "data-sb": "row-" + role });
    var node = el("div", { "class": "msg " + role, "data-sb": "msg-" + role });
    if (who) node.appendChild(el("span", { "class": "agent-name" }, who));
    render(node, text, role === "bot" || role === "agent");
    row.appendChild(node);
    if (role !== "system") {
      var meta = el("div", { "class": "meta", "data-sb": "meta" });
      var when = new Date((at || Date.now() / 1000) * 1000);
      meta.appendChild(el("time", { datetime: when.toISOString(), "data-sb": "time" }, clock(at)));
      row.appendChild(meta);
    }
    node.row = row;
    log.appendChild(row); scroll(); return node;
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
  function addVotes(node, messageId) {
    var meta = node.row && node.row.querySelector(".meta");
    if (!meta || !messageId || !optional("vote_up")) return;
    var box = el("span", { "class": "votes", "data-sb": "votes" });
    [["up", "vote_up"], ["down", "vote_down"]].forEach(function (v) {  /* words: no emoji font needed */
      var btn = el("button", { type: "button", "data-sb": "vote-" + v[0], "aria-pressed": "false" }, t(v[1]));
      btn.addEventListener("click", function () {
        api("/conversations/" + cid + "/votes", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ message_id: messageId, vote: v[0] })
        }).then(function (res) {
          if (!res.ok) return;
          Array.prototype.forEach.call(box.querySelectorAll("button"), function (b) {
            b.setAttribute("aria-pressed", b === btn ? "true" : "false");
          });
          box.setAttribute("data-voted", v[0]);
          thanks.textContent = t("vote_thanks");
        }).catch(function () {});
      });
      box.appendChild(btn);
    });
    var thanks = el("span", { "class": "thanks", "data-sb": "vote-thanks", "aria-live": "polite" });
    box.appendChild(thanks);
    meta.appendChild(box);
  }
  /* A photo in a bubble. Its bytes are the conversation's: fetched with the token, shown from a
   * blob URL (an <img src> could not send the token). */
  function addPhoto(role, source, size, at) {
    var node = addMessage(role, "", null, at);
    var img = el("img", { "class": "photo", "data-sb": "photo", alt: optional("attachment_alt") });
    if (size && size.width && size.height) { img.setAttribute("width", size.width); img.setAttribute("height", size.height); }
    if (typeof source === "string") {
      api("/conversations/" + cid + "/attachments/" + encodeURIComponent(source)).then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.blob();
      }).then(function (blob) { img.src = URL.createObjectURL(blob); }).catch(function () {});
    } else img.src = URL.createObjectURL(source);
    img.addEventListener("load", function () { if (stick) scroll(); });
    node.appendChild(img);
    return node;
  }
  /* After an agent closed the conversation: 1-5 stars and a comment, until sent (asked again after
   * a reload until then). */
  var ratingCard = null;
  function showRating(agent) {
    if (ratingCard || !optional("rating_submit")) return;
    var prompt = agent && optional("rating_prompt_agent") ? t("rating_prompt_agent", { agent: agent })
                                                         : optional("rating_prompt");
    var card = el("form", { "class": "rating", "data-sb": "rating", "aria-label": prompt, novalidate: "" });
    card.appendChild(el("p", {}, prompt));
    var stars = el("fieldset", {}); stars.appendChild(el("legend", {}, prompt));
    var score = 0, labels = [];
    for (var i = 1; i <= 5; i++) {
      (function (n) {
        var label = el("label", { "data-sb": "star-" + n });
        var radio = el("input", { type: "radio", name: "sb-score", value: String(n),
                                  "aria-label": t("rating_star", { score: n }) });
        label.appendChild(radio); label.appendChild(el("span", { "aria-hidden": "true" }, "\u2605"));
        radio.addEventListener("change", function () {
          score = n; submit.disabled = false;
          labels.forEach(function (l, j) { l.classList.toggle("on", j < n); });
        });
        labels.push(label); stars.appendChild(label);
      })(i);
    }
    var comment = el("textarea", { "data-sb": "rating-comment", maxlength: "1000",
                                   placeholder: optional("rating_comment"), "aria-label": optional("rating_comment") });
    var submit = el("button", { type: "submit", "data-sb": "rating-submit", disabled: "" }, optional("rating_submit"));
    var note = el("p", { "class": "note", role: "alert" });
    card.appendChild(stars); card.appendChild(comment); card.appendChild(submit); card.appendChild(note);
    card.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!score) return;
      submit.disabled = true;
      api("/conversations/" + cid + "/rating", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ score: score, comment: comment.value.trim() || null })
      }).then(function (res) {
        if (res.ok || res.status === 409) {  /* 409: already rated (another tab) */
          card.remove(); ratingCard = null;
          if (res.ok) addMessage("system", optional("rating_thanks"));
          input.focus();
          return;
        }
        return res.json().catch(function () { return {}; }).then(function (data) {
          note.textContent = errorText(data); submit.disabled = false;
        });
      }).catch(function () { note.textContent = t("error"); submit.disabled = false; });
    });
    ratingCard = card;
    log.appendChild(card); scroll();
  }
  /* A reply with sources ends with its sources line (after a blank line): shown apart. */
  function fillReply(node, r) {
    var text = r.text, line = null;
    var cut = text.lastIndexOf("\n\n");
    if (r.sources && r.sources.length && cut > 0) { line = text.slice(cut + 2); text = text.slice(0, cut); }
    node.textContent = "";
    node.classList.remove("streaming");
    render(node, text, true);
    if (line) node.appendChild(el("span", { "class": "sources", "data-sb": "sources" }, line));
  }
  function showReplies(replies, withButtons, bubble, messageId, rateable) {
    replies.forEach(function (r, i) {
      var node = (i === 0 && bubble) ? bubble : addMessage("bot", "");
      fillReply(node, r);
      if (rateable && i === replies.length - 1) addVotes(node, messageId);
      scroll(); arrived();
      if (withButtons) addButtons(r.buttons);
    });
    if (bubble && !replies.length) bubble.row.remove();
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
  var live = null;      /* the open WebSocket, when there is one */
  var pending = {};     /* message id -> the socket send waiting for its replies */

  function viaSocket(body) {
    return new Promise(function (resolve, reject) {
      var entry = { resolve: resolve, reject: reject, bubble: null };
      entry.timer = setTimeout(function () { delete pending[body.message_id]; reject(new Error("timeout")); }, 20000);
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
      setTyping("");
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

  /* REST: a 502/503 is retried with the same message id; a network failure rejects (queued). */
  function post(body, attempt) {
    return api("/conversations/" + cid + "/messages", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (res) {
      if ((res.status === 503 || res.status === 502) && attempt < 3) {
        return new Promise(function (ok) { setTimeout(ok, 500 * (attempt + 1)); })
          .then(function () { return post(body, attempt + 1); });
      }
      return res.json().catch(function () { return {}; })
        .then(function (data) { return { ok: res.ok, data: data }; });
    });
  }

  /* --- connection state: the banner, and the outbox sent in order ------------------------------ */
  var offline = false, retryTimer = null, retryDelay = 1000;
  function setOffline(down) {
    offline = down;
    if (down) banner.removeAttribute("hidden"); else banner.setAttribute("hidden", "");
    host.toggleAttribute("data-offline", down);
    if (down) {
      outbox.forEach(function (item) { if (item.state !== "queued") setState(item, "queued"); });
      clearTimeout(retryTimer);
      retryTimer = setTimeout(function () { retryDelay = Math.min(retryDelay * 2, 15000); flush(); }, retryDelay);
    } else { retryDelay = 1000; clearTimeout(retryTimer); }
  }
  var typingTimer = null, slowTimer = null;
  function setTyping(text, slow) {
    typing.textContent = text;
    typing.classList.toggle("slow", !!slow);
    clearTimeout(slowTimer);
  }
  function waitingForReply() {
    setTyping(t("typing"));
    slowTimer = setTimeout(function () { setTyping(optional("slow") || t("typing"), true); }, 8000);
  }
  /* A customer message's state in its meta line: sending, sent, queued (offline) or failed (with a
   * Retry that sends it again under the same message id: the server answers it once). */
  function setState(item, state) {
    item.state = state;
    item.node.row.setAttribute("data-state", state);
    var meta = item.node.row.querySelector(".meta");
    var old = meta.querySelector(".state"); if (old) old.remove();
    var box = el("span", { "class": "state", "data-sb": "state" });
    if (state === "queued") box.textContent = optional("queued");
    else if (state === "sent") box.textContent = "\u2713";
    else if (state === "failed") {
      box.appendChild(el("span", { "class": "failed" }, optional("failed") || t("error")));
      var again = el("button", { type: "button", "class": "retry", "data-sb": "retry" }, optional("retry") || "\u21BB");
      again.addEventListener("click", function () {
        if (item.error) { item.error.row.remove(); item.error = null; }
        outbox.push(item); setState(item, "sending"); flush();
      });
      box.appendChild(again);
    }
    meta.appendChild(box);
  }
  var outbox = [], sending = false;
  function flush() {
    if (sending || !outbox.length || !cid) return;
    if (navigator.onLine === false) { setOffline(true); return; }
    sending = true;
    var item = outbox[0];
    waitingForReply();
    var sent = item.file ? upload(item.file, item.body.message_id)
      : (live && live.readyState === 1)
        ? viaSocket(item.body).catch(function () { return post(item.body, 0); })  /* same id: answered once */
        : post(item.body, 0);
    sent.then(function (r) {
      outbox.shift(); sending = false; setTyping("");
      if (offline) setOffline(false);
      if (r.ok && r.data.conversation_token && r.data.conversation_id === cid) {
        token = r.data.conversation_token; localStorage.setItem(tokenKey, token);
      }
      if (r.ok) { setState(item, "sent"); showReplies(r.data.replies, true, r.bubble, item.body.message_id, r.data.rateable); }
      else {
        if (r.bubble) r.bubble.row.remove();
        setState(item, "failed");
        item.error = addMessage("error", errorText(item.file ? photoError(r.data) : r.data));
      }
      if (needResync && !outbox.length) { needResync = false; resync(); }
      flush();
    }, function () {  /* no network: keep it, in order, and try again */
      sending = false; setTyping("");
      setOffline(true);
    });
  }
  /* A photo: the raw bytes, re-encoded by the server (no metadata kept); the answer is the bot's
   * replies. A network failure rejects (the photo stays queued, in order). */
  function upload(file, messageId) {  /* the same id on a retry: the server keeps the photo once */
    return api("/conversations/" + cid + "/attachments", {
      method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream", "X-Message-Id": messageId }
    }).then(function (res) {
      return res.json().catch(function () { return {}; })
        .then(function (data) { return { ok: res.ok, data: data }; });
    });
  }
  function sendPhoto(file) {
    if (!file || !cid) return;
    clearButtons();
    var item = { file: file, body: { message_id: newId() }, node: addPhoto("user", file), state: "sending" };
    outbox.push(item);
    setState(item, offline || navigator.onLine === false ? "queued" : "sending");
    flush();
  }
  attach.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    var file = picker.files && picker.files[0];
    picker.value = "";
    sendPhoto(file);
    input.focus();
  });
  function sendMessage(text, payload) {
    text = (text || "").trim();
    if ((!text && !payload) || !cid) return;
    clearButtons();
    var body = { message_id: newId() };
    if (payload) body.payload = payload; else body.text = text;
    var item = { body: body, node: addMessage("user", text || payload), state: "sending" };
    outbox.push(item);
    setState(item, offline || navigator.onLine === false ? "queued" : "sending");
    flush();
  }
  window.addEventListener("online", function () { retryDelay = 1000; flush(); });
  window.addEventListener("offline", function () {
    setOffline(true);
    if (live) live.close();  /* a socket that looks open sends into nothing: REST after reconnect */
  });

  /* --- who is there: the subtitle, and the e-mail field when nobody is ------------------------- */
  var available = null, contactEmail = null;
  function showAvailability() {
    var text = available === null ? optional("subtitle")
      : optionalOr(available ? "subtitle_online" : "subtitle_offline", "subtitle");
    subtitle.textContent = text;
    var ask = available === false && !contactEmail && !!cid && !!optional("email_prompt");
    if (ask) contact.removeAttribute("hidden"); else contact.setAttribute("hidden", "");
    if (stick) scroll();
    host.setAttribute("data-available", available === null ? "" : (available ? "1" : "0"));
  }
  function checkAvailability() {
    return getJSON(server + "/api/v1/availability").then(function (a) {
      available = !!a.available; showAvailability();
    }).catch(function () {});
  }
  contact.addEventListener("submit", function (e) {
    e.preventDefault();
    var email = contactInput.value.trim();
    if (!/^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$/.test(email)) {
      contactNote.textContent = optional("email_invalid"); contactInput.setAttribute("aria-invalid", "true");
      return;
    }
    api("/conversations/" + cid + "/contact", {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: email })
    }).then(function (res) {
      if (!res.ok) { contactNote.textContent = optional("email_invalid"); return; }
      contactEmail = email; contactNote.textContent = ""; contactInput.removeAttribute("aria-invalid");
      showAvailability();
      addMessage("system", t("email_saved", { email: email }));
      input.focus();
    }).catch(function () { setOffline(true); });
  });

  function setOpen(open, returnFocus) {
    panel.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    localStorage.setItem(openKey, open ? "1" : "0");
    if (open) {
      unread = 0; showUnread();
      scroll(); requestAnimationFrame(scroll);
      input.focus();
    } else if (returnFocus) launcher.focus();
  }
  launcher.addEventListener("click", function () { setOpen(!isOpen(), true); });
  close.addEventListener("click", function () { setOpen(false, true); });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !composing) { e.preventDefault(); e.stopPropagation(); setOpen(false, true); }
  });
  restart.addEventListener("click", function () { startOver(); });
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

  var ANSWERS = { faq_answer: true, generate: true };
  function restore() {
    if (!cid) return newConversation().then(greet, function () {});
    return api("/conversations/" + cid).then(function (res) {
      if (res.status === 404) { return newConversation().then(greet, function () {}); }  /* expired */
      if (!res.ok) return;
      return res.json().then(function (data) {
        greet();
        contactEmail = data.contact_email || null;
        var last = null;
        data.history.forEach(function (e, i) {
          var role = (e.role === "user" || e.role === "agent" || e.role === "system") ? e.role : "bot";
          var node = e.attachment ? addPhoto(role, e.attachment.id, e.attachment, e.at)
                                  : addMessage(role, e.text, role === "agent" ? e.agent : null, e.at);
          if (role === "user") node.row.setAttribute("data-state", "sent");
          var next = data.history[i + 1];
          if (role === "bot" && ANSWERS[e.action] && !(next && next.role === "bot" && next.message_id === e.message_id)) {
            addVotes(node, e.message_id);
          }
          last = e;
        });
        if (last && last.role === "bot") addButtons(last.buttons);
        if (data.rating_requested) showRating(data.rating_agent);
        scroll();
      });
    }).catch(function () {});
  }

  function greet() { if (optional("greeting")) addMessage("bot", optional("greeting")); }

  /* After a Redis restart the server subscribes again and says "resync": what was published in
   * between is only in the stored conversation, so the log is drawn again from it. */
  var needResync = false;
  function clearLog() { while (log.firstChild) log.removeChild(log.firstChild); ratingCard = null; }
  function resync() {
    if (sending || outbox.length) { needResync = true; return; }
    clearLog();
    restore();
  }
  /* A new conversation: the old one stays in the transcripts, this browser forgets it. */
  function startOver() {
    return newConversation().then(function () {
      outbox = []; sending = false; setTyping(""); contactEmail = null;
      clearLog(); greet(); showAvailability();
      if (live) { var old = live; live = null; old.close(); }
      host.setAttribute("data-cid", cid);
      input.focus();
    }, function () { setOffline(true); });
  }

  /* Live events from the team (agent joined, agent messages, typing, back to the bot). */
  var socketFailures = 0;
  function listen(delay) {
    var url = server.replace(/^http/, "ws") + "/api/v1/conversations/" + (cid || "") + "/ws";
    var ws;
    if (!cid || !token) { setTimeout(function () { listen(delay); }, delay || 1000); return; }
    try { ws = new WebSocket(url, ["supportbot", "token." + token]); } catch (e) { return; }
    var mine = cid;
    ws.onopen = function () {
      if (mine !== cid) { ws.close(); return; }
      delay = 1000; socketFailures = 0; live = ws; host.setAttribute("data-live", "1");
      if (offline && navigator.onLine !== false) setOffline(false);
      flush();
    };
    ws.onmessage = function (m) {
      var ev; try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (mine !== cid) return;
      if (ev.message_id && onTurnFrame(ev)) return;
      if (ev.type === "agent_joined") { addMessage("system", ev.text); arrived(); }
      else if (ev.type === "agent_message") { setTyping(""); addMessage("agent", ev.text, ev.agent, ev.at); arrived(); }
      else if (ev.type === "agent_typing") {
        setTyping(t("agent_typing", { agent: ev.agent || "" })); clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { setTyping(""); }, 5000);
      } else if (ev.type === "bot_back" || ev.type === "closed") {
        addMessage("bot", ev.text); arrived();
        if (ev.type === "closed" && ev.rating) showRating(ev.rating.agent);
      }
      else if (ev.type === "resync") resync();
    };
    ws.onclose = function () {
      if (live === ws) live = null;
      Object.keys(pending).forEach(function (id) {  /* finish them over REST, same message id */
        var entry = pending[id]; delete pending[id]; clearTimeout(entry.timer);
        if (entry.bubble) entry.bubble.row.remove();
        entry.reject(new Error("socket closed"));
      });
      host.removeAttribute("data-live");
      if (mine !== cid) { listen(1000); return; }  /* a new conversation: its own socket */
      socketFailures += 1;
      if (socketFailures > 1 || navigator.onLine === false) setOffline(true);
      setTimeout(function () { listen(Math.min((delay || 1000) * 2, 30000)); }, delay || 1000);
    };
  }

  function mount() {
    document.body.appendChild(host);
    showUnread();
    loadStrings().catch(function () {}).then(applyStrings)
      .then(restore)
      .then(function () {
        showAvailability();
        if (localStorage.getItem(openKey) === "1") setOpen(true);
        host.setAttribute("data-ready", "1");
        listen(1000);
        checkAvailability();
        setInterval(checkAvailability, 60000);
      });
  }
  window.SupportBotWidget = { open: function () { setOpen(true); }, conversationId: function () { return cid; },
                              locale: function () { return locale; } };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount); else mount();
})();
