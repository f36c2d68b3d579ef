"""The Qt-free core shared by the command line and the desktop application.

Nothing under this package may import PySide6; a test enforces it.
"""
