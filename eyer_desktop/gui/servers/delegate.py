"""The Action column's delegate: a coloured label that opens a drop-down list.

The list offers only the actions the row's server may take, so the primary
cloud shows Primary and Deactivated. The chosen action is written to the
model at once, which saves it through the core.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Qt,
    QTimer,
)
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOption,
    QStyleOptionViewItem,
    QWidget,
)

from eyer_desktop.core.servers import Server, ServerAction
from eyer_desktop.gui.servers.labels import (
    ACTION_COLORS,
    action_description,
    action_label,
    allowed_actions,
)
from eyer_desktop.gui.servers.model import ServerRole

Index = QModelIndex | QPersistentModelIndex

DOT_DIAMETER = 10
ARROW_WIDTH = 12
PADDING = 6


def action_of(index: Index) -> ServerAction | None:
    """Return the action of the row at ``index``.

    Qt hands a StrEnum back as a plain str, so the value is coerced again.
    """
    value = index.data(ServerRole.ACTION)
    return ServerAction(value) if isinstance(value, str) else None


class ActionDelegate(QStyledItemDelegate):
    """Paints and edits a server's action."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: Index
    ) -> None:
        action = action_of(index)
        if action is None:
            super().paint(painter, option, index)
            return

        # The background and selection come from the style, with no text.
        view_option = QStyleOptionViewItem(option)
        self.initStyleOption(view_option, index)
        view_option.text = ""
        style = (
            view_option.widget.style() if view_option.widget else QApplication.style()
        )
        style.drawControl(
            QStyle.ControlElement.CE_ItemViewItem,
            view_option,
            painter,
            view_option.widget,
        )

        painter.save()
        try:
            self._paint_action(painter, view_option, action, style)
        finally:
            painter.restore()

    def _paint_action(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        action: ServerAction,
        style: QStyle,
    ) -> None:
        rect = option.rect.adjusted(PADDING, 0, -PADDING, 0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)

        dot = QRect(0, 0, DOT_DIAMETER, DOT_DIAMETER)
        dot.moveCenter(rect.center())
        dot.moveLeft(rect.left())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(ACTION_COLORS[action])
        painter.drawEllipse(dot)

        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = (
            option.palette.ColorRole.HighlightedText
            if selected
            else option.palette.ColorRole.Text
        )
        painter.setPen(option.palette.color(role))
        painter.setFont(option.font)
        text_rect = rect.adjusted(DOT_DIAMETER + PADDING, 0, -ARROW_WIDTH - PADDING, 0)
        painter.drawText(
            text_rect,
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            action_label(action),
        )

        # A small arrow shows that the cell opens a list, as a combo box does.
        arrow = QStyleOption()
        if option.widget is not None:
            arrow.initFrom(option.widget)
        arrow.rect = QRect(
            rect.right() - ARROW_WIDTH, rect.top(), ARROW_WIDTH, rect.height()
        )
        arrow.palette = option.palette
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_IndicatorArrowDown, arrow, painter, option.widget
        )

    def createEditor(  # noqa: N802 (Qt override)
        self, parent: QWidget, option: QStyleOptionViewItem, index: Index
    ) -> QWidget:
        server = index.data(ServerRole.SERVER)
        combo = QComboBox(parent)
        combo.setObjectName("actionEditor")
        for action in allowed_actions(server if isinstance(server, Server) else None):
            combo.addItem(action_label(action), action.value)
            combo.setItemData(
                combo.count() - 1,
                action_description(action),
                Qt.ItemDataRole.ToolTipRole,
            )
        combo.activated.connect(lambda _row: self._commit(combo))
        # Open the list at once, so one click on the cell shows the choices.
        QTimer.singleShot(0, combo.showPopup)
        return combo

    def setEditorData(self, editor: QWidget, index: Index) -> None:  # noqa: N802
        if not isinstance(editor, QComboBox):
            return
        action = action_of(index)
        row = editor.findData(action.value if action is not None else None)
        editor.setCurrentIndex(max(row, 0))

    def setModelData(  # noqa: N802 (Qt override)
        self, editor: QWidget, model: QAbstractItemModel, index: Index
    ) -> None:
        if not isinstance(editor, QComboBox):
            return
        action = ServerAction(editor.currentData())
        if action is not action_of(index):
            model.setData(index, action, Qt.ItemDataRole.EditRole)

    def updateEditorGeometry(  # noqa: N802 (Qt override)
        self, editor: QWidget, option: QStyleOptionViewItem, index: Index
    ) -> None:
        editor.setGeometry(option.rect)

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)
