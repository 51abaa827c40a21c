/* tcpscope graphs in a web page: draws every figure.tcpscope-graph element from the JSON
 * inside it (present/graph/html.py writes both) as an SVG, with a legend and notes.
 * No library, no network: the page works offline, as a file.
 *
 * Mouse: wheel zooms time (with Shift: the y axis), drag pans, double-click resets, hover
 * shows the nearest point's frame and values, a click on a legend entry hides or shows it.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var H = 520, M = {l: 86, t: 34, b: 46};

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  // big: the axis reaches 10^7, so every tick of it is written 12.5 M
  function fmt(v, unit, big) {
    var a = Math.abs(v);
    if (unit === "bps") {
      var p = [[1e9, " Gbit/s"], [1e6, " Mbit/s"], [1e3, " kbit/s"]];
      for (var i = 0; i < p.length; i++) if (a >= p[i][0]) return +(v / p[i][0]).toPrecision(4) + p[i][1];
      return +v.toPrecision(4) + " bit/s";
    }
    if (big) {
      var e = [[1e12, " T"], [1e9, " G"], [1e6, " M"]];
      for (var j = 0; j < e.length; j++) if (a >= e[j][0]) return +(v / e[j][0]).toPrecision(4) + e[j][1];
    }
    if (a >= 1000) return Math.round(v).toLocaleString("en-US");
    return +v.toPrecision(6) + "";
  }

  function markerPath(m, x, y, r) {
    switch (m) {
      case "x": case "X": return "M" + (x - r) + " " + (y - r) + "l" + 2 * r + " " + 2 * r + "M" + (x - r) + " " + (y + r) + "l" + 2 * r + " " + -2 * r;
      case "s": return "M" + (x - r) + " " + (y - r) + "h" + 2 * r + "v" + 2 * r + "h" + -2 * r + "z";
      case "D": return "M" + x + " " + (y - r) + "l" + r + " " + r + "l" + -r + " " + r + "l" + -r + " " + -r + "z";
      case "^": return "M" + x + " " + (y - r) + "l" + r + " " + 2 * r + "h" + -2 * r + "z";
      case "v": return "M" + x + " " + (y + r) + "l" + r + " " + -2 * r + "h" + -2 * r + "z";
      case "|": return "M" + x + " " + (y - r) + "v" + 2 * r;
      case "_": return "M" + (x - r) + " " + y + "h" + 2 * r;
      case "4": return "M" + x + " " + y + "v" + r + "M" + x + " " + y + "l" + r + " " + -r + "M" + x + " " + y + "l" + -r + " " + -r;
      default: return "M" + (x - r) + " " + y + "a" + r + " " + r + " 0 1 0 " + 2 * r + " 0a" + r + " " + r + " 0 1 0 " + -2 * r + " 0";
    }
  }
  var OPEN = {"x": 1, "X": 1, "|": 1, "_": 1, "4": 1};

  function extent(layers, axis, cols) {
    var lo = Infinity, hi = -Infinity;
    layers.forEach(function (ly) {
      if (ly.axis !== axis || ly.hidden) return;
      cols.forEach(function (c) {
        var a = ly.cols[c];
        if (!a) return;
        for (var i = 0; i < a.length; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]; }
      });
    });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var pad = (hi - lo) * 0.03;
    return [lo - pad, hi + pad];
  }

  function Plot(fig, data) {
    this.fig = fig; this.d = data;
    this.R = data.layers.some(function (l) { return l.axis === 1; }) ? 76 : 24;
    this.W = Math.max(480, Math.min(fig.clientWidth || 1000, 1400));
    this.svg = el("svg", {"class": "tcpscope-plot", width: this.W, height: H, viewBox: "0 0 " + this.W + " " + H,
                          role: "img", "aria-label": data.title}, null);
    fig.appendChild(this.svg);
    this.tip = document.createElement("div");
    this.tip.className = "tcpscope-tip";
    fig.appendChild(this.tip);
    this.legend();
    if (data.notes.length) {
      var p = document.createElement("p");
      p.className = "tcpscope-notes";
      p.textContent = data.notes.join("\n");
      fig.appendChild(p);
    }
    this.reset();
    this.bind();
  }

  Plot.prototype.reset = function () {
    var d = this.d;
    if (d.kind === "slidingwindow") {
      this.x = extent(d.layers.filter(function (l) { return l.draw === "band"; }), 0, ["lo", "hi"]);
      var rows = {};
      d.layers.forEach(function (l) { if (l.draw === "band") l.cols.row.forEach(function (r) { rows[r] = 1; }); });
      this.y = [rows[2] ? -0.5 : 0.5, 3.1];
    } else {
      this.x = extent(d.layers.map(function (l) { return {axis: 0, cols: l.cols}; }), 0, ["t", "t1"]);
      this.y = extent(d.layers, 0, ["y", "lo", "hi"]);
      this.y2 = extent(d.layers, 1, ["y"]);
    }
    this.draw();
  };

  Plot.prototype.sx = function (v) { return M.l + (v - this.x[0]) / (this.x[1] - this.x[0]) * (this.W - M.l - this.R); };
  Plot.prototype.sy = function (v, axis) {
    var r = axis === 1 ? this.y2 : this.y;
    return H - M.b - (v - r[0]) / (r[1] - r[0]) * (H - M.t - M.b);
  };

  Plot.prototype.draw = function () {
    var s = this.svg, d = this.d, self = this;
    while (s.firstChild) s.removeChild(s.firstChild);
    el("rect", {x: 0, y: 0, width: this.W, height: H, fill: "#fff"}, s);
    var clipId = "clip" + Math.random().toString(36).slice(2);
    var cp = el("clipPath", {id: clipId}, el("defs", {}, s));
    el("rect", {x: M.l, y: M.t, width: this.W - M.l - this.R, height: H - M.t - M.b}, cp);
    var g = el("g", {"clip-path": "url(#" + clipId + ")"}, s);
    if (d.kind === "slidingwindow") { this.drawWindow(g); return; }
    d.spans.forEach(function (sp) {
      if (sp.hidden) return;
      var a = self.sx(sp[0]), b = self.sx(sp[1]);
      el("rect", {x: a, y: M.t, width: Math.max(b - a, 0.5), height: H - M.t - M.b, fill: d.styles[sp[2]].color}, g);
    });
    this.axes(s);
    d.layers.forEach(function (ly) { if (!ly.hidden) self.drawLayer(g, ly); });
  };

  Plot.prototype.axes = function (s) {
    var self = this, d = this.d;
    var ax = el("g", {"class": "axes", "font-size": 11, fill: "#333"}, s);
    var big = function (r) { return Math.max(Math.abs(r[0]), Math.abs(r[1])) >= 1e7; };
    niceTicks(this.x[0], this.x[1], 8).forEach(function (v) {
      var x = self.sx(v);
      el("line", {x1: x, x2: x, y1: M.t, y2: H - M.b, stroke: "#e5e5e5"}, ax);
      el("text", {x: x, y: H - M.b + 15, "text-anchor": "middle"}, ax).textContent = fmt(v);
    });
    var unit = d.kind === "throughput" ? "bps" : "";
    niceTicks(this.y[0], this.y[1], 7).forEach(function (v) {
      var y = self.sy(v, 0);
      el("line", {x1: M.l, x2: self.W - self.R, y1: y, y2: y, stroke: "#e5e5e5"}, ax);
      el("text", {x: M.l - 6, y: y + 4, "text-anchor": "end"}, ax).textContent = fmt(v, unit, big(self.y));
    });
    if (d.layers.some(function (l) { return l.axis === 1; })) {
      niceTicks(this.y2[0], this.y2[1], 7).forEach(function (v) {
        el("text", {x: self.W - self.R + 4, y: self.sy(v, 1) + 4, "font-size": 10, fill: "#888"}, ax).textContent = fmt(v, "", big(self.y2));
      });
      var ym = M.t + (H - M.t - M.b) / 2, xr = self.W - 8;
      el("text", {x: xr, y: ym, "text-anchor": "middle", fill: "#888",
                  transform: "rotate(90 " + xr + " " + ym + ")"}, ax).textContent = d.y2label;
    }
    el("rect", {x: M.l, y: M.t, width: this.W - M.l - this.R, height: H - M.t - M.b, fill: "none", stroke: "#999"}, ax);
    el("text", {x: M.l + (this.W - M.l - this.R) / 2, y: H - 8, "text-anchor": "middle"}, ax).textContent = d.xlabel;
    el("text", {x: 14, y: M.t + (H - M.t - M.b) / 2, "text-anchor": "middle",
                transform: "rotate(-90 14 " + (M.t + (H - M.t - M.b) / 2) + ")"}, ax).textContent = d.ylabel;
    el("text", {x: M.l, y: 20, "font-size": 13, "font-weight": "bold"}, ax).textContent = d.title;
  };

  Plot.prototype.drawLayer = function (g, ly) {
    var c = ly.cols, st = this.d.styles[ly.key], p = [], i, self = this, n = c.t ? c.t.length : 0;
    var sy = function (v) { return self.sy(v, ly.axis); };
    var r = st.ms / 1.6 + 1;
    if (ly.draw === "ibeam" || ly.draw === "bar") {
      for (i = 0; i < n; i++) {
        var x = this.sx(c.n[i] > 1 ? (c.t[i] + c.t1[i]) / 2 : c.t[i]), a = sy(c.lo[i]), b = sy(c.hi[i]);
        if (c.n[i] > 1 && a - b < 2) { a += 1; b -= 1; }   // a bin of many: at least a dot per column
        p.push("M" + x.toFixed(1) + " " + a.toFixed(1) + "V" + b.toFixed(1));
        if (ly.draw === "ibeam" && c.n[i] === 1) p.push("M" + (x - 3).toFixed(1) + " " + a.toFixed(1) + "h6M" + (x - 3).toFixed(1) + " " + b.toFixed(1) + "h6");
      }
      el("path", {d: p.join(""), stroke: st.color, "stroke-width": st.lw * 1.3, fill: "none"}, g);
    } else if (ly.draw === "step" || ly.draw === "line") {
      for (i = 0; i < n; i++) {
        var X = this.sx(c.t[i]).toFixed(1), Y = sy(c.y[i]).toFixed(1);
        if (i === 0) p.push("M" + X + " " + Y);
        else if (ly.draw === "step") p.push("H" + X + "V" + Y);
        else p.push("L" + X + " " + Y);
      }
      el("path", {d: p.join(""), stroke: st.color, "stroke-width": st.lw * 1.3, fill: "none",
                  "stroke-dasharray": st.dash ? "6 4" : "none"}, g);
    } else if (ly.draw === "dots" || ly.draw === "marker") {
      var m = st.marker || "o";
      for (i = 0; i < n; i++) p.push(markerPath(m, +this.sx(c.t[i]).toFixed(1), +sy(c.y[i]).toFixed(1), r));
      var open = OPEN[m];
      el("path", {d: p.join(""), stroke: st.color, fill: open ? "none" : st.color, "stroke-width": open ? 1.6 : 0.5}, g);
    }
  };

  Plot.prototype.drawWindow = function (g) {
    var self = this, d = this.d, rowY = [2, 1, 0];
    var ax = el("g", {"font-size": 11, fill: "#333"}, this.svg);
    var big = Math.max(Math.abs(this.x[0]), Math.abs(this.x[1])) >= 1e7;
    niceTicks(this.x[0], this.x[1], 8).forEach(function (v) {
      var x = self.sx(v);
      el("line", {x1: x, x2: x, y1: H - M.b, y2: H - M.b + 4, stroke: "#999"}, ax);
      el("text", {x: x, y: H - M.b + 16, "text-anchor": "middle"}, ax).textContent = fmt(v, "", big);
    });
    var used = {};
    d.layers.forEach(function (ly) { if (ly.draw === "band") ly.cols.row.forEach(function (r) { used[r] = 1; }); });
    Object.keys(used).forEach(function (r) {
      var h = +r === 0 ? 0.4 : 0.175;   // above the row's band, at the left
      el("text", {x: M.l + 4, y: self.sy(rowY[r] + h, 0) - 4, "font-size": 11, fill: "#555"}, ax).textContent = d.rows[r];
    });
    el("text", {x: M.l + (self.W - M.l - self.R) / 2, y: H - 8, "text-anchor": "middle"}, ax).textContent = d.xlabel;
    el("text", {x: M.l, y: 20, "font-size": 13, "font-weight": "bold"}, ax).textContent = d.title;
    var edges = 0;
    d.layers.forEach(function (ly) {
      if (ly.hidden) return;
      var st = d.styles[ly.key];
      if (ly.draw === "band") {
        for (var i = 0; i < ly.cols.lo.length; i++) {
          var row = ly.cols.row[i], h = row === 0 ? 0.8 : 0.35, yc = rowY[row];
          var x0 = self.sx(ly.cols.lo[i]), x1 = self.sx(ly.cols.hi[i]);
          var y0 = self.sy(yc + h / 2, 0), y1 = self.sy(yc - h / 2, 0);
          el("rect", {x: x0, y: y0, width: Math.max(x1 - x0, 0.5), height: y1 - y0, fill: st.color,
                      stroke: "#555", "stroke-width": 0.6}, g).appendChild(
            document.createElementNS(NS, "title")).textContent = ly.label + ": " + fmt(ly.cols.lo[i]) + " … " + fmt(ly.cols.hi[i]);
        }
      } else if (ly.draw === "edge") {
        var x = self.sx(ly.cols.x[0]);
        el("line", {x1: x, x2: x, y1: self.sy(3.0, 0), y2: H - M.b, stroke: "#000", "stroke-dasharray": "5 3"}, g);
        el("text", {x: x, y: self.sy(2.6 + 0.28 * (edges % 2), 0), "text-anchor": "middle", "font-size": 11,
                    stroke: "#fff", "stroke-width": 4, "paint-order": "stroke"}, g).textContent = ly.text;
        edges++;
      }
    });
  };

  Plot.prototype.legend = function () {
    var self = this, d = this.d, ul = document.createElement("ul");
    ul.className = "tcpscope-legend";
    d.legend.forEach(function (entry) {
      var key = entry[0], draw = entry[1], label = entry[2], st = d.styles[key];
      var li = document.createElement("li");
      var sw = el("svg", {width: 22, height: 12}, null);
      if (draw === "span" || draw === "band") el("rect", {x: 1, y: 1, width: 20, height: 10, fill: st.color, stroke: "#666"}, sw);
      else if (draw === "dots" || draw === "marker") el("path", {d: markerPath(st.marker || "o", 11, 6, 4), stroke: st.color, fill: OPEN[st.marker] ? "none" : st.color, "stroke-width": 1.5}, sw);
      else el("path", {d: draw === "ibeam" ? "M11 1V11M8 1h6M8 11h6" : "M1 6H21", stroke: st.color, "stroke-width": Math.max(st.lw * 1.3, 1.5), fill: "none", "stroke-dasharray": st.dash ? "4 3" : "none"}, sw);
      li.appendChild(sw);
      li.appendChild(document.createTextNode(" " + label));
      li.addEventListener("click", function () {
        var on = li.classList.toggle("off");
        d.layers.forEach(function (ly) { if (ly.key === key) ly.hidden = on; });
        d.spans.forEach(function (sp) { if (sp[2] === key) sp.hidden = on; });
        self.draw();
      });
      ul.appendChild(li);
    });
    this.fig.appendChild(ul);
  };

  Plot.prototype.nearest = function (mx, my) {
    var best = null, bd = 64, self = this;
    this.d.layers.forEach(function (ly) {
      if (ly.hidden || !ly.cols.t || ly.draw === "line") return;
      var c = ly.cols, n = c.t.length;
      for (var i = 0; i < n; i++) {
        var x = self.sx(c.t[i]);
        if (Math.abs(x - mx) > 8) continue;
        var y = c.y ? self.sy(c.y[i], ly.axis) : null;
        var dist = y === null ? ((my - self.sy(c.lo[i], 0)) * (my - self.sy(c.hi[i], 0)) <= 0 ? 0 : 1e9) : (y - my) * (y - my);
        dist += (x - mx) * (x - mx);
        if (dist < bd) { bd = dist; best = [ly, i]; }
      }
    });
    return best;
  };

  Plot.prototype.bind = function () {
    var self = this, s = this.svg, drag = null, d = this.d;
    function pos(ev) { var r = s.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }
    function inv(px, r, a, b) { return r[0] + (px - a) / (b - a) * (r[1] - r[0]); }
    s.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = pos(ev), k = ev.deltaY > 0 ? 1.25 : 0.8;
      if (ev.shiftKey && d.kind !== "slidingwindow") {
        var vy = inv(H - p[1], self.y, M.b, H - M.t);
        self.y = [vy - (vy - self.y[0]) * k, vy + (self.y[1] - vy) * k];
      } else {
        var vx = inv(p[0], self.x, M.l, self.W - self.R);
        self.x = [vx - (vx - self.x[0]) * k, vx + (self.x[1] - vx) * k];
      }
      self.draw();
    }, {passive: false});
    s.addEventListener("mousedown", function (ev) { drag = [pos(ev), self.x.slice(), self.y.slice()]; });
    window.addEventListener("mouseup", function () { drag = null; });
    s.addEventListener("mousemove", function (ev) {
      var p = pos(ev);
      if (drag) {
        var dx = (p[0] - drag[0][0]) / (self.W - M.l - self.R) * (drag[1][1] - drag[1][0]);
        self.x = [drag[1][0] - dx, drag[1][1] - dx];
        if (d.kind !== "slidingwindow") {
          var dy = (p[1] - drag[0][1]) / (H - M.t - M.b) * (drag[2][1] - drag[2][0]);
          self.y = [drag[2][0] + dy, drag[2][1] + dy];
        }
        self.draw();
        return;
      }
      if (d.kind === "slidingwindow") return;
      var hit = self.nearest(p[0], p[1]);
      if (!hit) { self.tip.style.display = "none"; return; }
      var ly = hit[0], i = hit[1], c = ly.cols, w = d.words;
      var what = c.n && c.n[i] > 1 ? c.n[i] + " " + w.packets + ", " + w.frames + " " + c.frame[i] + "–" + c.frame1[i]
        : c.frame[i] ? w.frame + " " + c.frame[i] : "";
      var val = c.y ? fmt(c.y[i], d.kind === "throughput" && ly.axis === 0 ? "bps" : "") : fmt(c.lo[i]) + " … " + fmt(c.hi[i]);
      self.tip.textContent = ly.label + (what ? " — " + what : "") + "\n" + w.time + " " + (+c.t[i].toFixed(6)) + " s: " + val;
      self.tip.style.display = "block";
      self.tip.style.left = (p[0] + 14) + "px";
      self.tip.style.top = (p[1] + 10) + "px";
    });
    s.addEventListener("mouseleave", function () { self.tip.style.display = "none"; });
    s.addEventListener("dblclick", function () { self.reset(); });
  };

  function init() {
    var figs = document.querySelectorAll("figure.tcpscope-graph");
    for (var i = 0; i < figs.length; i++) {
      if (figs[i].getAttribute("data-ready")) continue;
      var data = JSON.parse(figs[i].querySelector("script.tcpscope-data").textContent);
      new Plot(figs[i], data);
      figs[i].setAttribute("data-ready", "1");
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
