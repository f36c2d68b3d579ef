"""The Exams page: the exam list, thumbnails, previews, import and export.

One file per role: the list model (``model``), its search and sort proxy
(``proxy``), the painting of thumbnails and status chips (``delegate``), the
thumbnail loader and caches (``thumbnails``), the page (``page``), the detail
pane (``detail``, ``history_model``, ``preview``), the import dialog
(``import_dialog``), export to a folder (``export``) and drag and drop
(``drag``).
"""
