"""The conversion options that the application settings and a server give.

Kept apart from the senders, so that converting files loads no networking
module.
"""

from __future__ import annotations

from eyer_desktop.core.dicom.charset import CharacterSet
from eyer_desktop.core.dicom.options import ConversionOptions, NameOrder
from eyer_desktop.core.server_settings import DicomSettings
from eyer_desktop.core.servers import Server
from eyer_desktop.core.settings import AppSettings


def conversion_options(
    settings: AppSettings, server: Server | None = None
) -> ConversionOptions:
    """Return the conversion options of the application settings.

    A DICOM server's patient name order and calling AE title apply to the
    files sent to it.
    """
    name_order = NameOrder.FAMILY_GIVEN
    source_ae_title = ""
    if server is not None and isinstance(server.settings, DicomSettings):
        name_order = NameOrder(server.settings.patient_name_order.value)
        source_ae_title = server.settings.calling_ae
    return ConversionOptions(
        dicom_prefix=settings.dicom_prefix,
        specific_character_set=CharacterSet(settings.specific_character_set.value),
        institution_name=settings.institution_name,
        name_order=name_order,
        source_ae_title=source_ae_title,
    )
