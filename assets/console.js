// Fairline staff console: refresh the Live calls list every few seconds without reloading the
// page. Without JavaScript the page has a "Refresh the list" link instead.
(function () {
  'use strict';
  var region = document.getElementById('live-calls');
  if (!region || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = parseInt(region.getAttribute('data-refresh'), 10) || 5;
  function refresh() {
    // Do not pull the list from under someone using it with the keyboard.
    if (region.contains(document.activeElement)) {
      return;
    }
    fetch(window.location.pathname, {
      credentials: 'same-origin',
      headers: { 'Accept': 'text/html', 'X-Fairline-Background': '1' }
    }).then(function (response) {
      if (response.redirected || !response.ok) {
        // Signed out or timed out: show the sign-in page.
        if (response.redirected) {
          window.location.assign(response.url);
        }
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (!html) {
        return;
      }
      var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('live-calls');
      if (fresh && !region.contains(document.activeElement)) {
        region.innerHTML = fresh.innerHTML;
      }
    }).catch(function () {});
  }
  window.setInterval(refresh, seconds * 1000);
})();
