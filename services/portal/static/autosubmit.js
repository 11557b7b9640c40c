// Logout continues at the identity provider: the form (ID token in its body) is sent without a click.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
}());
