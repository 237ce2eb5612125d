// The pages' own behaviour, in one static file: the service's Content-Security-Policy runs no
// inline <script> and no on*= attribute (autograder/service/headers.py), so templates mark
// elements with data-* attributes and this file, loaded (deferred) by both base templates,
// gives them their behaviour.
(function () {
  "use strict";

  // <form data-confirm="question">: asks before it is sent (the exam's "hand in now").
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // <input data-select-on-focus>: selected whole when focused (a link to copy).
  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el instanceof HTMLInputElement && el.hasAttribute("data-select-on-focus")) {
      el.select();
    }
  });

  // The exam countdown (#countdown with data-ends-at and data-server-now). It runs from the
  // server's clock: the page was rendered with the server's "now" and the attempt's end, so a
  // wrong computer clock does not change it, and a reload (or another computer) shows the same
  // time left. At zero the upload form is disabled (the server refuses late work anyway).
  function startCountdown(el) {
    var end = Date.parse(el.dataset.endsAt);
    var offset = Date.parse(el.dataset.serverNow) - Date.now();
    var form = document.getElementById("upload-form");
    var timer = null;
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function tick() {
      var left = Math.max(0, Math.floor((end - (Date.now() + offset)) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor(left / 60) % 60, s = left % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
      el.setAttribute("aria-label", "time left " + el.textContent);
      el.classList.toggle("low", left <= 300);
      if (left <= 0) {
        el.textContent = "Time is up";
        var note = document.getElementById("time-up");
        if (note) { note.hidden = false; }
        if (form) { Array.prototype.forEach.call(form.elements, function (x) { x.disabled = true; }); }
        if (timer !== null) { clearInterval(timer); }
        return false;
      }
      return true;
    }
    if (tick()) { timer = setInterval(tick, 1000); }
  }

  var countdown = document.querySelector("#countdown[data-ends-at][data-server-now]");
  if (countdown) { startCountdown(countdown); }
})();
