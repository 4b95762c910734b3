/* Shared by the console pages: the CSRF token and JSON calls. Text is only ever set with textContent. */
var SB = (function () {
  var csrf = "";
  function session() {
    return fetch("/console/api/session", {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (s) { csrf = s.csrf; return s; });
  }
  function call(method, url, body) {
    return fetch(url, {method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) {
            // A failed log-in is a 401 too: the log-in page shows it instead of reloading itself.
            if (r.status === 401 && url !== "/console/api/login") location.href = "/console/login";
            throw data;
          }
          if (data && data.csrf) csrf = data.csrf;
          return data;
        });
      });
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  return {session: session, call: call, post: function (u, b) { return call("POST", u, b || {}); },
          get: function (u) { return call("GET", u); }, el: el};
})();
