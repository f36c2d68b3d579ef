"""Sending from the desktop application: the sending service and "Send now".

:class:`~eyer_desktop.gui.delivery.service.SendingService` runs the core's
delivery engine on the worker pools; the Activity page, the Exams page and the
"Send now" menu talk to it.
"""
