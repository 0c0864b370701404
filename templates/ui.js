// Dispatch UI: live updates on top of pages that work without JavaScript.
//  * Follows /ui/live (the event stream's topics, one index line per change) for the topics
//    the page names (body data-topics, from the index it was rendered at) and, when something changed, fetches the page again and swaps
//    its live regions ([data-live] elements, by id). Forms and open details stay as they are.
//  * Follows a running task's log (pre[data-follow]).
//  * Keeps relative times current, copies full IDs, keeps the ACL token in session storage
//    and sends it as X-Nomad-Token on every request it makes.
(function () {
  "use strict";
  var TOKEN_KEY = "dispatch.token";

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function headers(extra) {
    var h = extra || {};
    var t = token();
    if (t) { h["X-Nomad-Token"] = t; }
    return h;
  }
  function say(text) {
    var el = document.getElementById("live-state");
    if (el) { el.textContent = text; }
  }

  // ---- relative times ----
  function relative(ns) {
    var secs = Math.round((Date.now() - ns / 1e6) / 1000);
    var future = secs < 0;
    secs = Math.abs(secs);
    var text;
    if (secs < 5) { return "just now"; }
    if (secs < 60) { text = secs + " s"; }
    else if (secs < 3600) { text = Math.floor(secs / 60) + " min"; }
    else if (secs < 86400) { text = Math.floor(secs / 3600) + " h " + Math.floor((secs % 3600) / 60) + " min"; }
    else { text = Math.floor(secs / 86400) + " d"; }
    return future ? "in " + text : text + " ago";
  }
  function refreshTimes(root) {
    var times = (root || document).querySelectorAll("time[data-ns]");
    for (var i = 0; i < times.length; i++) {
      var ns = Number(times[i].getAttribute("data-ns"));
      if (ns > 0) { times[i].textContent = relative(ns); }
    }
  }

  // ---- full IDs on copy ----
  document.addEventListener("copy", function (e) {
    var sel = document.getSelection();
    if (!sel || sel.isCollapsed || !sel.anchorNode) { return; }
    var node = sel.anchorNode.nodeType === 1 ? sel.anchorNode : sel.anchorNode.parentElement;
    var el = node && node.closest("[data-full]");
    if (el && el.contains(sel.focusNode) && e.clipboardData) {
      e.clipboardData.setData("text/plain", el.getAttribute("data-full"));
      e.preventDefault();
    }
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.copy[data-copy]");
    if (!b) { return; }
    var value = b.getAttribute("data-copy");
    if (navigator.clipboard) {
      navigator.clipboard.writeText(value).then(function () { b.textContent = "Copied"; }, function () {});
    }
  });

  // ---- live regions ----
  var refreshTimer = null;
  var lastRefresh = 0;
  var refreshing = false;
  function swapLive(doc) {
    var regions = document.querySelectorAll("[data-live]");
    for (var i = 0; i < regions.length; i++) {
      var fresh = doc.getElementById(regions[i].id);
      if (fresh) { regions[i].replaceWith(fresh); }
    }
    refreshTimes(document);
  }
  function fetchPage(url) {
    return fetch(url, { headers: headers(), cache: "no-store", credentials: "same-origin" }).then(function (res) {
      return res.text().then(function (text) {
        return { res: res, doc: new DOMParser().parseFromString(text, "text/html") };
      });
    });
  }
  function refresh() {
    if (refreshing) { scheduleRefresh(); return; }
    refreshing = true;
    lastRefresh = Date.now();
    fetchPage(location.href).then(function (r) {
      if (r.res.ok) { swapLive(r.doc); }
    }).catch(function () {}).then(function () { refreshing = false; });
  }
  function scheduleRefresh() {
    if (refreshTimer) { return; }
    var wait = Math.max(200, 1000 - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, wait);
  }

  // Newline-delimited JSON from a streaming response, one parsed frame at a time.
  function readLines(res, onLine) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buf = "";
    function pump() {
      return reader.read().then(function (r) {
        if (r.done) { return; }
        buf += decoder.decode(r.value, { stream: true });
        var i;
        while ((i = buf.indexOf("\n")) >= 0) {
          var line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line) { onLine(line); }
        }
        return pump();
      });
    }
    return pump();
  }

  function followEvents(topics, index) {
    var next = index;
    var query = topics.split(" ").filter(Boolean).map(function (t) {
      return "topic=" + encodeURIComponent(t);
    }).join("&");
    function connect() {
      var from = next ? "&index=" + next : "";
      fetch("/ui/live?" + query + from, { headers: headers(), cache: "no-store" }).then(function (res) {
        if (!res.ok || !res.body) { throw new Error("event stream: " + res.status); }
        say("Live");
        return readLines(res, function (line) {
          var frame;
          try { frame = JSON.parse(line); } catch (e) { return; }
          if (frame.Index) {
            next = frame.Index + 1;
            scheduleRefresh();
          } else if (frame.Lagged) {
            // Too far behind the feed: show the page as it is now and follow from now.
            next = 0;
          }
        });
      }).catch(function () {}).then(function () {
        say("Reconnecting…");
        // Catch up on what happened while disconnected, then follow again.
        scheduleRefresh();
        setTimeout(connect, 2000);
      });
    }
    connect();
  }

  // ---- logs ----
  function followLog(pre) {
    var url = pre.getAttribute("data-follow");
    var note = document.getElementById("log-note");
    function attempt() {
      fetch(url, { headers: headers(), cache: "no-store" }).then(function (res) {
        if (!res.ok || !res.body) {
          if (res.status === 404) {
            if (note) { note.textContent = "Waiting for the task to start…"; }
            setTimeout(attempt, 1000);
            return;
          }
          throw new Error("logs: " + res.status);
        }
        if (note) { note.textContent = "Following (live)."; }
        pre.textContent = "";
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) {
              if (note) { note.textContent = "The task has ended; this is its whole output."; }
              pre.setAttribute("data-ended", "true");
              return;
            }
            var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
            pre.appendChild(document.createTextNode(decoder.decode(r.value, { stream: true })));
            if (atEnd) { pre.scrollTop = pre.scrollHeight; }
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        if (note) { note.textContent = "Log stream interrupted; retrying…"; }
        setTimeout(attempt, 2000);
      });
    }
    attempt();
  }

  // ---- forms and the token ----
  // With a token, form posts go through fetch so the header rides along; the answer (the
  // next page, or this page with the errors) replaces the document.
  function submitWithToken(form, e) {
    if (!token()) { return; }
    e.preventDefault();
    var body = form.enctype === "multipart/form-data" ? new FormData(form) : new URLSearchParams(new FormData(form));
    fetch(form.action, { method: "POST", headers: headers(), body: body }).then(function (res) {
      return res.text().then(function (text) {
        if (res.redirected) { history.pushState(null, "", res.url); }
        document.open();
        document.write(text);
        document.close();
      });
    });
  }

  function tokenForm() {
    var form = document.getElementById("token-form");
    if (!form) { return; }
    var input = document.getElementById("token-input");
    if (token()) { input.placeholder = "Token in use (this tab)"; }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      try { sessionStorage.setItem(TOKEN_KEY, input.value.trim()); } catch (err) {}
      input.value = "";
      location.reload();
    });
    document.getElementById("token-clear").addEventListener("click", function () {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) {}
      location.reload();
    });
  }

  function start() {
    refreshTimes(document);
    setInterval(function () { refreshTimes(document); }, 15000);
    tokenForm();
    // Delegated: forms inside live regions are replaced by fresh copies.
    document.addEventListener("submit", function (e) {
      var form = e.target;
      if (form.matches && form.matches("main form[method=post]")) { submitWithToken(form, e); }
    });
    var body = document.body;
    var topics = body.getAttribute("data-topics");
    if (topics) {
      say("");
      followEvents(topics, Number(body.getAttribute("data-index") || "0"));
    }
    // A token sees more than the anonymous page this came as: show its view at once.
    if (token() && document.getElementById("token-form")) { refresh(); }
    var pre = document.querySelector("pre[data-follow]");
    if (pre) { followLog(pre); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
