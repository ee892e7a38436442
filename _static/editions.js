// The link to the other edition (English <-> 中文) on every page: the same page in the other book.
// The announcement's link names the other edition's root relative to this edition's root
// (data-other, e.g. "zh/" or "../"); Sphinx gives this page's root as <html data-content_root>.
// Pages that only one edition has, and the other edition's page that stands for them: the Chinese glossary
// (术语表) is, in English, part of the chapter with the exercises, the glossary and the references.
var ONLY_IN_ONE = {"book/glossary.html": "book/12_exercises.html"};

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("a.lrlab-edition[data-other]").forEach(function (link) {
    var root = new URL(document.documentElement.dataset.content_root || "./", window.location.href);
    var page = window.location.href.slice(root.href.length).split("#")[0].split("?")[0];
    page = ONLY_IN_ONE[page] || page;
    link.href = new URL(link.dataset.other + page, root).href;
  });
});
