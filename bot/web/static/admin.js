/* The console's admin page: agents (disable, enable, new password) and canned replies (create, edit,
   delete). A file of its own: the CSP allows no inline script. Text is only set with textContent. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); }, el = SB.el;
  function fail(where) {
    return function (err) {
      var done = $(where + "-done"); if (done) done.textContent = "";
      $(where).textContent = (err && err.detail) || "Failed";
    };
  }
  function ok(where, text) { $(where).textContent = ""; var done = $(where + "-done"); if (done) done.textContent = text || ""; }
  function agentPath(username, action) {
    return "/console/api/agents/" + encodeURIComponent(username) + "/" + action;
  }
  function cell(tr, text, cls) { var td = el("td", cls, text); tr.appendChild(td); return td; }

  function loadAgents() {
    return SB.get("/console/api/agents").then(function (list) {
      var body = $("agents"); body.textContent = "";
      list.forEach(function (a) {
        var tr = el("tr"); tr.setAttribute("data-username", a.username);
        cell(tr, a.name); cell(tr, a.username); cell(tr, a.role);
        cell(tr, a.active ? "active" : "disabled", "status");
        var td = cell(tr, null);
        // Disabling ends the agent's console sessions at once; enabling lets them log in again.
        var toggle = el("button", "act", a.active ? "Disable" : "Enable");
        toggle.type = "button"; toggle.setAttribute("data-action", a.active ? "disable" : "enable");
        toggle.setAttribute("aria-label", (a.active ? "Disable " : "Enable ") + a.username);
        toggle.addEventListener("click", function () {
          SB.post(agentPath(a.username, a.active ? "disable" : "enable"))
            .then(function () { ok("agents-error"); return loadAgents(); }, fail("agents-error"));
        });
        td.appendChild(toggle);
        var form = el("form", "inline"); form.setAttribute("data-action", "password");
        var input = el("input"); input.type = "password"; input.autocomplete = "new-password";
        input.required = true; input.setAttribute("aria-label", "New password for " + a.username);
        input.placeholder = "new password";
        var set = el("button", "act", "Reset password"); set.type = "submit";
        form.appendChild(input); form.appendChild(set);
        form.addEventListener("submit", function (e) {
          e.preventDefault();
          SB.post(agentPath(a.username, "password"), {password: input.value})
            .then(function () { ok("agents-error", "Password of " + a.username + " changed."); input.value = ""; },
                  fail("agents-error"));
        });
        td.appendChild(form);
        body.appendChild(tr);
      });
    });
  }

  function editCanned(r) {
    $("canned-id").value = r.id; $("canned-shortcut").value = r.shortcut;
    $("canned-title-input").value = r.title; $("canned-text").value = r.text;
    $("canned-form-title").textContent = "Edit /" + r.shortcut; $("canned-shortcut").focus();
  }
  function loadCanned() {
    return SB.get("/console/api/canned").then(function (list) {
      var body = $("canned"); body.textContent = "";
      if (!list.length) {
        var tr = el("tr"); var td = cell(tr, "No canned replies yet."); td.colSpan = 4; body.appendChild(tr);
      }
      list.forEach(function (r) {
        var tr = el("tr"); tr.setAttribute("data-shortcut", r.shortcut);
        cell(tr, "/" + r.shortcut); cell(tr, r.title); cell(tr, r.text, "text");
        var td = cell(tr, null);
        var edit = el("button", "act", "Edit"); edit.type = "button";
        edit.setAttribute("aria-label", "Edit /" + r.shortcut);
        edit.addEventListener("click", function () { editCanned(r); });
        var del = el("button", "act", "Delete"); del.type = "button";
        del.setAttribute("aria-label", "Delete /" + r.shortcut);
        del.addEventListener("click", function () {
          SB.call("DELETE", "/console/api/canned/" + r.id)
            .then(function () { ok("canned-error"); return loadCanned(); }, fail("canned-error"));
        });
        td.appendChild(edit); td.appendChild(del);
        body.appendChild(tr);
      });
    });
  }

  SB.session().then(function () { return Promise.all([loadAgents(), loadCanned()]); }).then(function () {
    document.body.setAttribute("data-ready", "1");
  });
  $("create").addEventListener("submit", function (e) {
    e.preventDefault();
    SB.post("/console/api/agents", {username: $("username").value, display_name: $("display_name").value,
                                    password: $("password").value, role: $("role").value})
      .then(function () { ok("error"); e.target.reset(); return loadAgents(); }, fail("error"));
  });
  $("canned-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var id = $("canned-id").value, body = {shortcut: $("canned-shortcut").value,
                                           title: $("canned-title-input").value, text: $("canned-text").value};
    (id ? SB.call("PUT", "/console/api/canned/" + id, body) : SB.post("/console/api/canned", body))
      .then(function () { ok("canned-error"); e.target.reset(); return loadCanned(); }, fail("canned-error"));
  });
  $("canned-form").addEventListener("reset", function () {
    $("canned-id").value = ""; $("canned-form-title").textContent = "New canned reply";
  });
})();
