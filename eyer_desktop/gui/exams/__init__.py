"""The Exams page: the exam list, thumbnails, previews, import and export.

One file per role:

- ``model``, ``proxy``, ``delegate`` and ``status``: the exam list, its
  search and sort, the painting of thumbnails and status chips, and the
  delivery state of a chip.
- ``thumbnails``: the thumbnail loader and its memory and disk caches.
- ``page``: the page itself.
- ``detail``, ``preview`` and ``history_model``: the detail pane of one exam.
- ``import_dialog``, ``export`` and ``drag``: import, export to a folder, and
  drag and drop.
- ``labels`` and ``endings``: shared names of exam values, and worker endings
  tied to the lifetime of their receiver.
"""
