(function () {
  "use strict";
  var el = SB.el, current = null, me = null;
  var $ = function (id) { return document.getElementById(id); };

  function showError(err) { $("error").textContent = (err && (err.detail || err.error)) || ""; }

  function loadQueue() {
    return SB.get("/console/api/queue").then(function (q) {
      var box = $("queue"); box.textContent = "";
      q.waiting.forEach(function (item) {
        var div = el("div", "item" + (item.conversation_id === current ? " active" : ""));
        div.setAttribute("data-cid", item.conversation_id);
        div.appendChild(el("div", null, item.conversation_id));
        div.appendChild(el("div", "meta", item.reason + " · " + item.channel + " · waiting " + item.waiting_s + "s"
          + (item.priority ? " · priority" : "")));
        div.addEventListener("click", function () { open(item.conversation_id); });
        box.appendChild(div);
      });
      if (!q.waiting.length) box.appendChild(el("p", "meta", "Nobody is waiting."));
      var mine = $("mine"); mine.textContent = "";
      q.mine.forEach(function (cid) {
        var div = el("div", "item" + (cid === current ? " active" : ""), cid);
        div.setAttribute("data-cid", cid);
        div.addEventListener("click", function () { open(cid); });
        mine.appendChild(div);
      });
      $("online").textContent = q.agents_online + " agent(s) online";
    });
  }

  function open(cid) {
    current = cid; showError(null);
    return SB.get("/console/api/conversations/" + encodeURIComponent(cid)).then(function (c) {
      $("conv-title").textContent = c.conversation_id;
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
        t.appendChild(m);
        if (e.understood && e.understood.intent) {
          t.appendChild(el("div", "why", "understood: " + e.understood.intent + " (" +
            Math.round((e.understood.confidence || 0) * 100) + "%) → " + e.understood.action +
            (e.understood.faq_entry ? " · FAQ " + e.understood.faq_entry + " " + e.understood.faq_score : "")));
        }
      });
      t.scrollTop = t.scrollHeight;
      var s = $("suggestions"); s.textContent = "";
      c.suggestions.forEach(function (h) {
        var d = el("div", "suggest");
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
  $("claim").addEventListener("click", function () { act("claim"); });
  $("handback").addEventListener("click", function () { act("handback", clearView); });
  $("close").addEventListener("click", function () { act("close", clearView); });
  $("send").addEventListener("click", function () {
    var text = $("reply").value.trim(); if (!text) return;
    SB.post("/console/api/conversations/" + encodeURIComponent(current) + "/messages", {text: text})
      .then(function () { $("reply").value = ""; return open(current); }, showError);
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
    document.body.setAttribute("data-ready", "1");
    loadQueue(); live();
  });
})();
