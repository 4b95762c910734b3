/* The console's log-in page (a file of its own: the CSP allows no inline script). A failed log-in
   says so and keeps the user name; the password field is emptied and focused for another try. */
SB.session().then(function () {
  var $ = function (id) { return document.getElementById(id); };
  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    $("error").textContent = "";
    SB.post("/console/api/login", {username: $("username").value, password: $("password").value})
      .then(function () { location.href = "/console"; },
            function (err) {
              $("error").textContent = (err && err.error === "bad_credentials")
                ? "Wrong user name or password." : (err && err.detail) || "Log-in failed.";
              $("password").value = ""; $("password").setAttribute("aria-invalid", "true");
              $("password").focus();
            });
  });
});
