// The link to the other edition (English <-> 中文) on every page: the same page in the other book.
// The announcement's link names the other edition's root relative to this edition's root
// (data-other, e.g. "zh/" or "../"); Sphinx gives this page's root as <html data-content_root>.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("a.lrlab-edition[data-other]").forEach(function (link) {
    var root = new URL(document.documentElement.dataset.content_root || "./", window.location.href);
    var page = window.location.href.slice(root.href.length).split("#")[0];
    link.href = new URL(link.dataset.other + page, root).href;
  });
});
