// Progressive enhancements; every page works without this file.
document.documentElement.classList.add("js");

// After a failed save, move focus to the list of problems so it is read first.
document.addEventListener("DOMContentLoaded", function () {
  var errors = document.getElementById("errors");
  if (errors) {
    errors.setAttribute("tabindex", "-1");
    errors.focus();
  }
});

// Copy buttons: <button data-copy="input-id">.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) return;
  var label = button.textContent;
  function done() {
    button.textContent = "Copied";
    button.classList.add("copied");
    setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 2000);
  }
  function fallback() {
    input.select();
    document.execCommand("copy");
    done();
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, fallback);
  } else {
    fallback();
  }
});

// Select the whole voice URL on focus, for copying by hand.
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("input[readonly]")) event.target.select();
});
