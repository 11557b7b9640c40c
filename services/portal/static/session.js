// Idle-timeout warning: shown before the server ends the session; "Fortsätt vara inloggad" extends it.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (!idle) { return; }
  var warnBefore = parseInt(body.getAttribute("data-warning-seconds") || "300", 10);
  var csrf = body.getAttribute("data-csrf");
  var dialog = document.getElementById("session-warning");
  var remaining = document.getElementById("session-remaining");
  var button = document.getElementById("session-extend");
  var deadline = Date.now() + idle * 1000;
  function tick() {
    var left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) { window.location.assign("/?inloggning=kravs"); return; }
    if (left <= warnBefore) {
      if (dialog.hidden) { dialog.hidden = false; button.focus(); }
      remaining.textContent = Math.ceil(left / 60) + " minut" + (Math.ceil(left / 60) === 1 ? "" : "er");
    }
  }
  button.addEventListener("click", function () {
    fetch("/session/extend", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then(function (r) {
        if (!r.ok) { window.location.assign("/?inloggning=kravs"); return; }
        deadline = Date.now() + idle * 1000;
        dialog.hidden = true;
      });
  });
  window.setInterval(tick, 5000);
}());
