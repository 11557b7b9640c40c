// Draws the report's chart from the JSON in #chart-data with the locally served plotly.js.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var source = document.getElementById("chart-data");
  var target = document.getElementById("chart");
  if (!source || !target || typeof Plotly === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var traces = data.series.map(function (s) {
    return data.type === "line"
      ? { type: "scatter", mode: "lines+markers", name: s.name, x: data.x, y: s.y, connectgaps: false }
      : { type: "bar", name: s.name, x: data.x, y: s.y };
  });
  var layout = {
    barmode: "group",
    margin: { t: 20, r: 20, b: 120, l: 60 },
    yaxis: { title: { text: data.y_title || "Antal" }, rangemode: "tozero", separatethousands: true },
    xaxis: { automargin: true, type: "category", title: { text: data.x_title || "" } },
    legend: { orientation: "h" },
    separators: ", ",
  };
  Plotly.newPlot(target, traces, layout, { displaylogo: false, responsive: true });
});
