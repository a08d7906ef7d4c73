// Drag-and-drop reassign on the day board, over the reassign form (progressive enhancement:
// without this script, or without a mouse, the form does the same). Dropping a visit's row on
// an agent fills that row's form with the agent's id and submits it: the same post, CSRF token
// and version check as typing the id and pressing Reassign.
"use strict";
(function () {
  var dragged = null;
  document.querySelectorAll("tr[draggable=true]").forEach(function (row) {
    row.addEventListener("dragstart", function (event) {
      dragged = row;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", row.id);
      row.classList.add("dragging");
    });
    row.addEventListener("dragend", function () {
      row.classList.remove("dragging");
      dragged = null;
    });
  });
  document.querySelectorAll("section[data-agent]").forEach(function (section) {
    section.addEventListener("dragover", function (event) {
      if (dragged && !section.contains(dragged)) {
        event.preventDefault();
        section.classList.add("drop-here");
      }
    });
    section.addEventListener("dragleave", function () {
      section.classList.remove("drop-here");
    });
    section.addEventListener("drop", function (event) {
      event.preventDefault();
      section.classList.remove("drop-here");
      var form = dragged && dragged.querySelector("form.reassign");
      if (!form) return;
      form.querySelector("input[name=agent_id]").value = section.dataset.agent;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  });
})();
