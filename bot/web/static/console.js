(function () {
  "use strict";
  var el = SB.el, current = null, me = null;
  var $ = function (id) { return document.getElementById(id); };

  function showError(err) { $("error").textContent = (err && (err.detail || err.error)) || ""; }

  function short(cid) { return cid.length > 18 ? cid.slice(0, 8) + "…" + cid.slice(-6) : cid; }
  function waited(s) {
    if (s < 60) return s + " s"; if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function card(item, waiting) {
    var cid = item.conversation_id, who = item.contact || "Visitor " + short(cid);
    var b = el("button", "item" + (cid === current ? " active" : ""));
    b.type = "button"; b.setAttribute("role", "listitem"); b.setAttribute("data-cid", cid);
    b.title = cid;
    // Unread: customer messages since this agent last had it open (kept by the server, per agent).
    var unread = cid === current ? 0 : (item.unread || 0);
    if (unread) b.appendChild(el("span", "badge", String(unread)));
    b.appendChild(el("div", "who", who));
    var meta = [item.channel || "web"];
    if (item.language) meta.push(item.language);
    if (waiting) { meta.push(item.reason); meta.push("waiting " + waited(item.waiting_s)); }
    if (item.priority) meta.push("priority");
    b.appendChild(el("div", "meta", meta.join(" · ")));
    if (item.last_message) b.appendChild(el("div", "last", item.last_message));
    b.setAttribute("aria-label", who + ", conversation " + cid + ", " + meta.join(", ")
      + (unread ? ", " + unread + " unread" : "") + (item.last_message ? ". Last: " + item.last_message : ""));
    b.addEventListener("click", function () { open(cid); });
    return b;
  }

  // Arrow keys move between the cards of a list (Tab reaches each card too); Enter opens one.
  function arrows(box) {
    box.addEventListener("keydown", function (e) {
      if (["ArrowDown", "ArrowUp", "Home", "End"].indexOf(e.key) < 0) return;
      var items = Array.prototype.slice.call(document.querySelectorAll("#queue .item, #mine .item, #others .item"));
      var i = items.indexOf(document.activeElement); if (i < 0 || !items.length) return;
      e.preventDefault();
      var next = e.key === "Home" ? 0 : e.key === "End" ? items.length - 1
        : Math.min(items.length - 1, Math.max(0, i + (e.key === "ArrowDown" ? 1 : -1)));
      items[next].focus();
    });
  }
  arrows($("queue")); arrows($("mine")); arrows($("others"));

  // Search and filters: applied by the server (GET /console/api/queue?q=&status=&channel=...).
  var FILTERS = ["q", "status", "channel", "language", "reason", "agent"];
  function filterQuery() {
    var parts = [];
    FILTERS.forEach(function (f) {
      var v = $("f-" + f).value.trim(); if (v) parts.push(f + "=" + encodeURIComponent(v));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); loadQueue().catch(showError); });
  $("filters").addEventListener("reset", function () { setTimeout(function () { loadQueue(); }, 0); });

  var known = null;  // the waiting ids last seen: a new one is a new hand-off
  function loadQueue() {
    return SB.get("/console/api/queue" + filterQuery()).then(function (q) {
      var focused = document.activeElement && document.activeElement.getAttribute("data-cid");
      var box = $("queue"); box.textContent = "";
      q.waiting.forEach(function (item) { box.appendChild(card(item, true)); });
      if (!q.waiting.length) box.appendChild(el("p", "meta", "Nobody is waiting."));
      var mine = $("mine"); mine.textContent = "";
      (q.mine_cards || []).forEach(function (item) { mine.appendChild(card(item, false)); });
      var others = $("others"); others.textContent = "";
      (q.others || []).forEach(function (item) {
        var c = card(item, false); c.querySelector(".meta").textContent += " · " + item.agent;
        others.appendChild(c);
      });
      $("others-title").hidden = !(q.others || []).length;
      $("online").textContent = q.agents_online + " agent(s) online";
      if (focused) {
        var again = document.querySelector(".item[data-cid='" + CSS.escape(focused) + "']");
        if (again) again.focus();
      }
      if (!filterQuery()) {  // (a filtered list says nothing about what is new)
        if (known !== null) {
          q.waiting.forEach(function (w) { if (known.indexOf(w.conversation_id) < 0) alertNew(w); });
        }
        known = q.waiting.map(function (w) { return w.conversation_id; });
      }
    });
  }

  // A new hand-off: a desktop notification (if the agent allowed them) and a beep (if switched on).
  var soundOn = localStorage.getItem("sb-sound") === "1", audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.08; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.15);
    } catch (e) { /* no audio */ }
  }
  function alertNew(w) {
    document.body.setAttribute("data-last-alert", w.conversation_id);
    if (soundOn) beep();
    if (window.Notification && Notification.permission === "granted") {
      var n = new Notification("New hand-off: " + (w.contact || "a visitor"),
                               {body: (w.reason || "") + (w.last_message ? " — " + w.last_message : ""),
                                tag: w.conversation_id});
      n.onclick = function () { window.focus(); open(w.conversation_id); };
    }
  }
  function showToggles() {
    var granted = window.Notification && Notification.permission === "granted";
    $("notify").setAttribute("aria-pressed", granted ? "true" : "false");
    $("notify").textContent = granted ? "Notifications on" : "Desktop notifications";
    $("sound").setAttribute("aria-pressed", soundOn ? "true" : "false");
    $("sound").textContent = "Sound: " + (soundOn ? "on" : "off");
  }
  $("notify").addEventListener("click", function () {  // asked on a click, as browsers want
    if (!window.Notification) { showError({detail: "This browser has no desktop notifications."}); return; }
    Promise.resolve(Notification.requestPermission()).then(showToggles);
  });
  $("sound").addEventListener("click", function () {
    soundOn = !soundOn; localStorage.setItem("sb-sound", soundOn ? "1" : "0");
    if (soundOn) beep();  // (the click also unlocks audio)
    showToggles();
  });
  showToggles();

  // A customer's photo: served to logged-in agents only (the cookie goes with the <img> request).
  function photo(cid, a) {
    var url = "/console/api/conversations/" + encodeURIComponent(cid) + "/attachments/" + encodeURIComponent(a.id);
    var link = el("a", "photo"); link.href = url; link.target = "_blank"; link.rel = "noopener";
    var img = el("img"); img.src = url; img.alt = "Photo from the customer (" + a.width + "×" + a.height + ")";
    img.width = a.width; img.height = a.height; img.setAttribute("data-sb", "attachment");
    link.appendChild(img);
    return link;
  }
  // The customer's rating of a conversation an agent closed (1..5 and a comment).
  function rating(r) {
    var box = el("div", "rating"); box.setAttribute("data-sb", "rating");
    box.appendChild(el("b", null, "Rated " + r.score + "/5 " + "★★★★★".slice(0, r.score) + "☆☆☆☆☆".slice(r.score)));
    box.appendChild(el("span", "meta", (r.agent ? " · " + r.agent : "") + " · " + new Date(r.at * 1000).toLocaleString()));
    if (r.comment) box.appendChild(el("div", null, "“" + r.comment + "”"));
    return box;
  }

  function open(cid) {
    current = cid; showError(null);
    return SB.get("/console/api/conversations/" + encodeURIComponent(cid)).then(function (c) {
      $("conv-title").textContent = c.contact_email || c.conversation_id;
      $("conv-title").title = c.conversation_id;
      $("conv-meta").textContent = "channel " + c.channel + (c.language ? " · language " + c.language : "")
        + (c.handoff ? " · handed off: " + (c.handoff_reason || "")
        : " · with the bot") + (c.status ? " · " + c.status : "")
        + (c.contact_email ? " · reply to " + c.contact_email : "");
      $("actions").hidden = false;
      $("claim").hidden = !c.handoff || c.assigned;
      $("handback").hidden = !c.assigned_to_me;
      $("close").hidden = !c.assigned_to_me;
      $("reply-box").hidden = !c.assigned_to_me;
      var t = $("transcript"); t.textContent = "";
      c.history.forEach(function (e) {
        var m = el("div", "msg " + e.role, (e.agent && e.role === "agent" ? e.agent + ": " : "") + e.text);
        if (e.attachment) m.appendChild(photo(c.conversation_id, e.attachment));
        t.appendChild(m);
        if (e.understood && e.understood.intent) {
          t.appendChild(el("div", "why", "understood: " + e.understood.intent + " (" +
            Math.round((e.understood.confidence || 0) * 100) + "%) → " + e.understood.action +
            (e.understood.faq_entry ? " · FAQ " + e.understood.faq_entry + " " + e.understood.faq_score : "")));
        }
      });
      (c.ratings || []).forEach(function (r) { t.appendChild(rating(r)); });
      t.scrollTop = t.scrollHeight;  // the latest message, with the reply box under it, in view
      if (c.assigned_to_me) $("reply-box").scrollIntoView({block: "nearest"});
      var s = $("suggestions"); s.textContent = "";
      c.suggestions.forEach(function (h) {
        var d = el("button", "suggest"); d.type = "button";
        d.appendChild(el("b", null, h.question)); d.appendChild(el("div", null, h.answer));
        d.addEventListener("click", function () { $("reply").value = h.answer; });
        s.appendChild(d);
      });
      loadQueue();
    }, function (err) {
      // Gone from the queue, or another agent took it: agents only see waiting and their own ones.
      if (err && (err.error === "unknown_conversation" || err.error === "not_your_conversation")) {
        clearView(); loadQueue();
        if (err.error === "not_your_conversation") showError(err);
        return;
      }
      showError(err);
    });
  }

  function clearView() {
    current = null;
    $("conv-title").textContent = "Select a conversation"; $("conv-meta").textContent = "";
    $("actions").hidden = true; $("reply-box").hidden = true;
    $("transcript").textContent = ""; $("suggestions").textContent = "";
  }

  function act(path, done) {
    return SB.post("/console/api/conversations/" + encodeURIComponent(current) + "/" + path)
      .then(function () { if (done) { done(); return loadQueue(); } return open(current); }, showError);
  }
  $("claim").addEventListener("click", function () {
    act("claim").then(function () { if (!$("reply-box").hidden) $("reply").focus(); });
  });
  $("handback").addEventListener("click", function () { act("handback", clearView); });
  $("close").addEventListener("click", function () { act("close", clearView); });
  // Canned replies: "/" at the start of a word opens a picker of the admins' replies, filtered by
  // what follows; arrow keys choose, Enter or Tab inserts, Escape closes.
  var canned = [], picks = [], pick = 0, slash = -1;
  function loadCanned() { return SB.get("/console/api/canned").then(function (l) { canned = l; }, function () {}); }
  function closePicker() {
    $("canned").hidden = true; $("reply").setAttribute("aria-expanded", "false");
    $("reply").removeAttribute("aria-activedescendant"); slash = -1;
  }
  function drawPicker() {
    var ul = $("canned"); ul.textContent = "";
    picks.forEach(function (r, i) {
      var li = el("li", "pick" + (i === pick ? " chosen" : ""));
      li.id = "canned-" + i; li.setAttribute("role", "option");
      li.setAttribute("aria-selected", i === pick ? "true" : "false");
      li.setAttribute("data-shortcut", r.shortcut);
      li.appendChild(el("b", null, "/" + r.shortcut)); li.appendChild(document.createTextNode(" " + r.title));
      li.addEventListener("mousedown", function (e) { e.preventDefault(); pick = i; insertPick(); });
      ul.appendChild(li);
    });
    ul.hidden = !picks.length; $("reply").setAttribute("aria-expanded", picks.length ? "true" : "false");
    if (picks.length) $("reply").setAttribute("aria-activedescendant", "canned-" + pick);
  }
  function updatePicker() {
    var box = $("reply"), before = box.value.slice(0, box.selectionStart);
    var m = /(^|\s)\/([^\s\/]*)$/.exec(before);
    if (!m) { closePicker(); return; }
    slash = before.length - m[2].length - 1;
    var word = m[2].toLowerCase();
    picks = canned.filter(function (r) {
      return r.shortcut.indexOf(word) === 0 || r.title.toLowerCase().indexOf(word) >= 0;
    }).slice(0, 8);
    pick = Math.min(pick, Math.max(0, picks.length - 1));
    drawPicker();
  }
  function insertPick() {
    var box = $("reply"), r = picks[pick]; if (!r || slash < 0) return;
    var end = box.selectionStart;
    box.value = box.value.slice(0, slash) + r.text + box.value.slice(end);
    var at = slash + r.text.length; box.setSelectionRange(at, at);
    closePicker(); box.focus();
  }
  $("reply").addEventListener("input", updatePicker);
  $("reply").addEventListener("blur", function () { setTimeout(closePicker, 150); });
  $("reply").addEventListener("keydown", function (e) {  // (registered before the Enter-sends handler)
    if ($("canned").hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault(); pick = (pick + (e.key === "ArrowDown" ? 1 : picks.length - 1)) % picks.length;
      drawPicker();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault(); insertPick();
    } else if (e.key === "Escape") {
      e.preventDefault(); closePicker();
    }
  });

  function send() {
    var text = $("reply").value.trim(); if (!text) return;
    SB.post("/console/api/conversations/" + encodeURIComponent(current) + "/messages", {text: text})
      .then(function () { $("reply").value = ""; return open(current); }, showError)
      .then(function () { $("reply").focus(); });
  }
  $("send").addEventListener("click", send);
  $("reply").addEventListener("keydown", function (e) {  // Enter sends; Shift+Enter is a new line
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.defaultPrevented) return;
    e.preventDefault(); send();
  });
  var lastTyping = 0;
  $("reply").addEventListener("input", function () {
    if (Date.now() - lastTyping < 3000) return; lastTyping = Date.now();
    SB.post("/console/api/conversations/" + encodeURIComponent(current) + "/typing").catch(function () {});
  });
  $("logout").addEventListener("click", function () {
    SB.post("/console/api/logout").then(function () { location.href = "/console/login"; });
  });

  function live() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/console/ws");
    var ping = setInterval(function () { if (ws.readyState === 1) ws.send("ping"); }, 15000);
    ws.onmessage = function (m) {
      var ev = JSON.parse(m.data);
      loadQueue();
      if (current && (ev.type === "resync" || ev.conversation_id === current)) open(current);
    };
    ws.onclose = function () { clearInterval(ping); setTimeout(live, 2000); };
  }

  SB.session().then(function (s) {
    if (!s.agent) { location.href = "/console/login"; return; }
    me = s.agent; $("me").textContent = me.name + " (" + me.role + ")";
    $("admin-link").hidden = me.role !== "admin";
    $("analytics-link").hidden = me.role !== "admin";
    document.body.setAttribute("data-ready", "1");
    loadQueue(); loadCanned(); live();
    openFromHash();
  });
  // /console#<conversation id> opens that conversation (links in notifications, e-mails, analytics).
  function openFromHash() {
    var cid = decodeURIComponent(location.hash.slice(1));
    if (cid && cid !== current) open(cid);
  }
  window.addEventListener("hashchange", openFromHash);
})();
