// Dispatch UI: live updates on top of pages that work without JavaScript.
//  * Follows /ui/live (the event stream's topics, one index line per change) for the topics
//    the page names (body data-topics, from the index it was rendered at) and, when something changed, fetches the page again and swaps
//    its live regions ([data-live] elements, by id). Forms and open details stay as they are.
//  * Follows a running task's log (pre[data-follow]).
//  * Keeps relative times current, copies full IDs.
//  * With ACLs on: keeps the ACL token in session storage (never a URL or a cookie) and sends
//    it as X-Nomad-Token on every request it makes. Pages are rendered by the server for the
//    token of the request, so when a token is stored the script fetches the page with it and
//    swaps it in (at load, when following links, posting forms, and for live updates).
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
  // What the shown page follows (the change feed, a log): ended when another page is
  // swapped in.
  var follow = { ctl: null, gen: 0 };
  function stopFollowing() {
    follow.gen += 1;
    if (follow.ctl) { follow.ctl.abort(); }
    follow.ctl = window.AbortController ? new AbortController() : null;
  }
  function followSignal() { return follow.ctl ? follow.ctl.signal : undefined; }

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
    var gen = follow.gen;
    var next = index;
    var query = topics.split(" ").filter(Boolean).map(function (t) {
      return "topic=" + encodeURIComponent(t);
    }).join("&");
    function connect() {
      var from = next ? "&index=" + next : "";
      if (gen !== follow.gen) { return; }
      fetch("/ui/live?" + query + from, { headers: headers(), cache: "no-store", signal: followSignal() }).then(function (res) {
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
        if (gen !== follow.gen) { return; }
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
    var gen = follow.gen;
    function attempt() {
      if (gen !== follow.gen) { return; }
      fetch(url, { headers: headers(), cache: "no-store", signal: followSignal() }).then(function (res) {
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

  // ---- pages fetched with the token ----
  // Show a fetched page in place of this one: its title and body (the script in the head
  // stays; what the page follows starts again for the new body).
  function showPage(doc, url, push) {
    if (push && url !== location.href) { history.pushState(null, "", url); }
    else if (url !== location.href) { history.replaceState(null, "", url); }
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    initPage();
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target) { target.scrollIntoView(); } else if (push) { window.scrollTo(0, 0); }
  }
  function go(url, push) {
    stopFollowing();
    return fetchPage(url).then(function (r) {
      showPage(r.doc, r.res.url || url, push);
    }).catch(function () { location.href = url; });
  }
  // With a token, a link to another UI page is followed with the token too.
  function sameUi(a) {
    if (!a || a.target || a.hasAttribute("download")) { return false; }
    var u = new URL(a.href, location.href);
    return u.origin === location.origin && u.pathname.indexOf("/ui/") === 0 &&
      u.pathname.indexOf("/ui/assets/") !== 0;
  }
  document.addEventListener("click", function (e) {
    if (!token() || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) { return; }
    var a = e.target.closest && e.target.closest("a[href]");
    if (!sameUi(a)) { return; }
    var u = new URL(a.href, location.href);
    if (u.pathname === location.pathname && u.search === location.search && u.hash) { return; }
    e.preventDefault();
    go(u.href, true);
  });
  window.addEventListener("popstate", function () {
    if (token()) { go(location.href, false); }
  });

  // With a token, forms go through fetch so the header rides along; the answer (the next
  // page, or this page with the errors) is shown in place of this one.
  function submitWithToken(form, e) {
    if (!token()) { return; }
    e.preventDefault();
    var method = (form.getAttribute("method") || "get").toLowerCase();
    if (method === "get") {
      var u = new URL(form.action, location.href);
      u.search = new URLSearchParams(new FormData(form)).toString();
      go(u.href, true);
      return;
    }
    var body = form.enctype === "multipart/form-data" ? new FormData(form) : new URLSearchParams(new FormData(form));
    stopFollowing();
    fetch(form.action, { method: "POST", headers: headers(), body: body }).then(function (res) {
      return res.text().then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        if (!doc.body || !doc.body.hasAttribute("data-acl")) {
          // not a page (a plain refusal, a limit): say it on this one
          say(res.status + ": " + text.slice(0, 200));
          initPage();
          return;
        }
        showPage(doc, res.redirected ? res.url : location.href, res.redirected);
      });
    }).catch(function (err) { say("The form could not be sent: " + err); });
  }

  // ---- the token field ----
  function useToken(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (err) {}
    go(location.href, false);
  }
  function signOut() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) {}
    // the page as the anonymous policy shows it
    location.reload();
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.id === "token-form") {
      e.preventDefault();
      var input = document.getElementById("token-input");
      var value = input.value.trim();
      input.value = "";
      if (value) { useToken(value); }
      return;
    }
    if (form.matches && form.matches("main form")) { submitWithToken(form, e); }
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#token-clear")) { signOut(); }
  });

  // What a freshly shown body needs: the token field shown (it works only with this
  // script), times, the change feed, a log to follow.
  function initPage() {
    var body = document.body;
    var form = document.getElementById("token-form");
    if (form) {
      form.hidden = false;
      var stored = !!token();
      document.getElementById("token-clear").hidden = !stored;
      document.getElementById("token-input").placeholder = stored ? "Token in use (this tab)" : "Secret ID";
    }
    refreshTimes(document);
    var topics = body.getAttribute("data-topics");
    if (topics) {
      say("");
      followEvents(topics, Number(body.getAttribute("data-index") || "0"));
    }
    var pre = document.querySelector("pre[data-follow]");
    if (pre) { followLog(pre); }
  }

  function start() {
    stopFollowing();
    setInterval(function () { refreshTimes(document); }, 15000);
    var body = document.body;
    // A token is stored but this page was rendered without it (a load, a reload, a link
    // opened in this tab): show the page as the token sees it.
    if (token() && body.getAttribute("data-acl") === "true" && body.getAttribute("data-token-sent") !== "true") {
      initPageTokenOnly();
      go(location.href, false);
      return;
    }
    initPage();
  }
  // Before the token's page arrives: the field only (nothing followed as anonymous).
  function initPageTokenOnly() {
    var form = document.getElementById("token-form");
    if (form) { form.hidden = false; }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
