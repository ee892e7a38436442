// The book's results tables (lrlab.course.show_table): a click on a column's head sorts the rows by that
// column, numbers by value ("0.881 ± 0.004" by its mean), text alphabetically; a second click reverses.
document.addEventListener("DOMContentLoaded", function () {
  function key(cell) {
    var text = cell.textContent.trim();
    var number = parseFloat(text.replace(/^[^-+\d.]*/, ""));
    return isNaN(number) ? text.toLowerCase() : number;
  }
  document.querySelectorAll("table.lrlab-sortable").forEach(function (table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    var body = table.tBodies[0];
    if (!head || !body) return;
    Array.from(head.cells).forEach(function (th, column) {
      th.title = "sort by this column";
      th.style.cursor = "pointer";
      th.addEventListener("click", function () {
        var up = th.dataset.order !== "up";
        Array.from(head.cells).forEach(function (other) { delete other.dataset.order; });
        th.dataset.order = up ? "up" : "down";
        var rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[column]), y = key(b.cells[column]);
          var order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
          return up ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
});
