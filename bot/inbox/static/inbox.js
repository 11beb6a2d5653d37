// The inbox's only script (the Content-Security-Policy allows no other): it polls for new messages on a
// conversation (every 2 s) and for the rows of a queue (every 5 s). Data is written with textContent only.
// Its few words come from the page, in the caseworker's language (data-urgent, data-open, data-empty on #rows);
// the server sends the rows and messages already in that language.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function poll(url, every, onData) {
    function tick() {
      if (document.hidden) return;
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) window.location.assign("/inbox/login");
          return response.ok ? response.json() : null;
        })
        .then(function (data) { if (data) onData(data); })
        .catch(function () { /* offline for a moment: the next tick tries again */ });
    }
    window.setInterval(tick, every);
  }

  var history = document.getElementById("history");
  if (history) {
    var after = history.getAttribute("data-after") || "0";
    poll(function () { return history.getAttribute("data-messages-url") + "?after=" + encodeURIComponent(after); },
      2000, function (data) {
        data.messages.forEach(function (m) {
          var item = el("li", "msg " + m.side);
          var meta = el("span", "meta");
          meta.appendChild(el("b", "", m.who));
          meta.appendChild(document.createTextNode(" · "));
          meta.appendChild(el("time", "", m.time));
          if (m.side !== "in") meta.appendChild(document.createTextNode(" · " + m.status));
          item.appendChild(meta);
          item.appendChild(el("p", "", m.text));
          history.appendChild(item);
          after = String(m.id);
        });
      });
  }

  var rows = document.getElementById("rows");
  if (rows) {
    var words = {
      urgent: rows.getAttribute("data-urgent") || "urgent",
      open: rows.getAttribute("data-open") || "(open)",
      empty: rows.getAttribute("data-empty") || "Nothing here."
    };
    poll(function () { return rows.getAttribute("data-rows-url"); }, 5000, function (data) {
      var fresh = data.rows.map(function (row) {
        var tr = el("tr", row.urgent ? "urgent" : "");
        var badges = el("td");
        if (row.urgent) badges.appendChild(el("span", "badge urgent", words.urgent));
        row.flags.forEach(function (flag) {
          badges.appendChild(document.createTextNode(" "));
          badges.appendChild(el("span", "badge", flag));
        });
        tr.appendChild(badges);
        [row.language, row.organisation, row.channel, row.status, row.assignee, row.waiting].forEach(function (v) {
          tr.appendChild(el("td", "", v));
        });
        var link = el("a", "", row.preview || words.open);
        link.href = row.url;  // built by the server from a conversation id
        var cell = el("td");
        cell.appendChild(link);
        tr.appendChild(cell);
        return tr;
      });
      if (!fresh.length) {
        var empty = el("td", "empty", words.empty);
        empty.colSpan = 8;
        var tr = el("tr");
        tr.appendChild(empty);
        fresh = [tr];
      }
      rows.replaceChildren.apply(rows, fresh);
      Object.keys(data.counts).forEach(function (name) {
        var count = document.querySelector('[data-count="' + name + '"]');
        if (count) count.textContent = String(data.counts[name]);
      });
    });
  }

  // The header's language switch goes as soon as a language is chosen (its button stays, for no script).
  Array.prototype.forEach.call(document.querySelectorAll("form.language select"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
