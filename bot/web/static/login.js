/* The console's log-in page (a file of its own: the CSP allows no inline script). */
SB.session().then(function () {
  document.getElementById("login").addEventListener("submit", function (e) {
    e.preventDefault();
    SB.post("/console/api/login", {username: document.getElementById("username").value,
                                   password: document.getElementById("password").value})
      .then(function () { location.href = "/console"; },
            function (err) { document.getElementById("error").textContent = err.detail || "Login failed"; });
  });
});
