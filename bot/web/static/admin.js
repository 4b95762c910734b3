/* The console's admin page: agents (a file of its own: the CSP allows no inline script). */
function showAdminError(err) { document.getElementById("error").textContent = (err && err.detail) || "Failed"; }

function agentPath(a, action) { return "/console/api/agents/" + encodeURIComponent(a.username) + "/" + action; }

function load() {
  return SB.get("/console/api/agents").then(function (list) {
    var ul = document.getElementById("agents"); ul.textContent = "";
    list.forEach(function (a) {
      var li = SB.el("li", null, a.name + " — " + a.username + " (" + a.role + (a.active ? "" : ", disabled") + ") ");
      // Disabling ends the agent's console sessions at once; enabling lets them log in again.
      var toggle = SB.el("button", "act", a.active ? "Disable" : "Enable");
      toggle.setAttribute("data-username", a.username);
      toggle.addEventListener("click", function () {
        SB.post(agentPath(a, a.active ? "disable" : "enable")).then(load, showAdminError);
      });
      li.appendChild(toggle);
      ul.appendChild(li);
    });
  });
}
SB.session().then(load).then(function () {
  var v = function (id) { return document.getElementById(id).value; };
  document.getElementById("create").addEventListener("submit", function (e) {
    e.preventDefault();
    SB.post("/console/api/agents", {username: v("username"), display_name: v("display_name"),
                                    password: v("password"), role: v("role")})
      .then(function () { document.getElementById("error").textContent = ""; e.target.reset(); return load(); },
            showAdminError);
  });
  document.getElementById("reset").addEventListener("submit", function (e) {
    e.preventDefault();
    SB.post(agentPath({username: v("reset-username")}, "password"), {password: v("reset-password")})
      .then(function () { document.getElementById("error").textContent = ""; e.target.reset(); return load(); },
            showAdminError);
  });
});
