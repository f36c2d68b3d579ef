"""The desktop application: a PySide6 model/view layer over the Qt-free core.

Widgets call core functions and run anything that touches the network, decodes
images or converts DICOM in a worker (:mod:`eyer_desktop.gui.workers`), so the
window never freezes. Start it with :func:`eyer_desktop.gui.app.run_gui`.
"""
