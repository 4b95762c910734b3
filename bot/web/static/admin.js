/* The console's admin page: agents (a file of its own: the CSP allows no inline script). */
function load() {
  return SB.get("/console/api/agents").then(function (list) {
    var ul = document.getElementById("agents"); ul.textContent = "";
    list.forEach(function (a) { ul.appendChild(SB.el("li", null, a.name + " — " + a.username + " (" + a.role + ")")); });
  });
}
SB.session().then(load).then(function () {
  document.getElementById("create").addEventListener("submit", function (e) {
    e.preventDefault();
    var v = function (id) { return document.getElementById(id).value; };
    SB.post("/console/api/agents", {username: v("username"), display_name: v("display_name"),
                                    password: v("password"), role: v("role")})
      .then(function () { document.getElementById("error").textContent = ""; e.target.reset(); return load(); },
            function (err) { document.getElementById("error").textContent = err.detail || "Failed"; });
  });
});
